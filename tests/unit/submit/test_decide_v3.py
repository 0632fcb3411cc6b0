"""The gate on V3 hops: a V3 pool passes only as the CREATE2 pool of a configured V3 factory for
the hop's tokens and fee tier, and the calldata's fee word decodes exactly (issue 13)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils import to_checksum_address
from mev_common.chain.contracts import V3Dex, load_contracts
from mev_common.chain.pools import UNISWAP_V3_INIT_CODE_HASH, v3_pool_address
from mev_common.executor import V3_HOP, ExecHop, decode_execute, encode_execute
from mev_common.messages import Hop
from mev_common.settings import Settings

from services.submit.decide import Policy, Refusal, SendPlan, decide
from services.submit.limits import Spend
from tests.unit.submit.gate_world import (
    CONTRACTS,
    HEAD,
    PAIR_A,
    PAIR_B,
    PROFIT,
    USDC,
    WETH,
    bundle,
    settings,
)

FACTORY_V3 = to_checksum_address("0x" + "f3" * 20)
POOL_500 = v3_pool_address(FACTORY_V3, WETH, USDC, 500, UNISWAP_V3_INIT_CODE_HASH)
POOL_3000 = v3_pool_address(FACTORY_V3, USDC, WETH, 3000, UNISWAP_V3_INIT_CODE_HASH)
ROGUE = v3_pool_address("0x" + "99" * 20, WETH, USDC, 500, UNISWAP_V3_INIT_CODE_HASH)
V3_CONTRACTS = replace(CONTRACTS, v3_dexes=(V3Dex("A3", FACTORY_V3),))


def policy() -> Policy:
    return Policy.from_settings(settings(), V3_CONTRACTS)


def data(*hops: ExecHop) -> str:
    return "0x" + encode_execute(list(hops), 5 * 10**18, PROFIT, False).hex()


def v3(pool: str, token_in: str, token_out: str, fee_bps: int) -> ExecHop:
    return ExecHop(pool, token_in, token_out, fee_bps, "v3")


def test_v3_and_mixed_routes_pass_with_their_pools() -> None:
    for hops in (
        (v3(POOL_500, WETH, USDC, 5), v3(POOL_3000, USDC, WETH, 30)),
        (v3(POOL_500, WETH, USDC, 5), ExecHop(PAIR_B, USDC, WETH, 30)),
        (ExecHop(PAIR_A, WETH, USDC, 30), v3(POOL_3000, USDC, WETH, 30)),
    ):
        plan = decide(bundle(data=data(*hops)), policy(), HEAD, Spend())
        assert isinstance(plan, SendPlan), plan
        assert plan.pools == frozenset(h.pair for h in hops)


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (
            v3(ROGUE, WETH, USDC, 5),
            f"hop 0 pool {ROGUE} is not the {WETH}/{USDC} 500-pip pool of any configured V3 "
            "factory",
        ),
        (  # the configured factory's 500-pip pool, claimed as its 3000-pip tier
            v3(POOL_500, WETH, USDC, 30),
            f"hop 0 pool {POOL_500} is not the {WETH}/{USDC} 3000-pip pool of any configured V3 "
            "factory",
        ),
        (  # a V2 pair is no V3 pool
            v3(PAIR_A, WETH, USDC, 30),
            f"hop 0 pool {PAIR_A} is not the {WETH}/{USDC} 3000-pip pool of any configured V3 "
            "factory",
        ),
        (  # nor a V3 pool a V2 pair
            ExecHop(POOL_500, WETH, USDC, 30),
            f"hop 0 pool {POOL_500} is not the {WETH}/{USDC} pair of any configured factory",
        ),
    ],
    ids=["unconfigured-factory", "other-fee-tier", "v2-pair-as-v3", "v3-pool-as-v2"],
)
def test_a_v3_hop_not_derived_from_a_configured_factory_is_refused(
    first: ExecHop, reason: str
) -> None:
    forged = bundle(data=data(first, v3(POOL_3000, USDC, WETH, 30)))
    assert decide(forged, policy(), HEAD, Spend()) == Refusal(reason)


def test_without_v3_factories_configured_every_v3_hop_is_refused() -> None:
    plain = Policy.from_settings(settings(), CONTRACTS)
    forged = bundle(data=data(v3(POOL_500, WETH, USDC, 5), ExecHop(PAIR_B, USDC, WETH, 30)))
    assert decide(forged, plain, HEAD, Spend()) == Refusal(
        f"hop 0 pool {POOL_500} is not the {WETH}/{USDC} 500-pip pool of any configured V3 factory"
    )


def test_fee_words_that_do_not_decode_exactly_are_refused() -> None:
    """The contract reads fee words in [10_000, V3_HOP) and from V3_HOP + 1,000,000 up as
    InvalidPath; a tier that is not whole bps cannot be what simulate encoded."""
    good = bytes.fromhex(data(v3(POOL_500, WETH, USDC, 5), v3(POOL_3000, USDC, WETH, 30))[2:])
    word = (V3_HOP | 500).to_bytes(32, "big")
    assert good.count(word) == 1
    for bad in (10_000, V3_HOP - 1, V3_HOP | 250, V3_HOP + 1_000_000):
        forged = "0x" + good.replace(word, bad.to_bytes(32, "big")).hex()
        refusal = decide(bundle(data=forged), policy(), HEAD, Spend())
        assert isinstance(refusal, Refusal)
        assert refusal.reason.startswith("data is not an executor call: hop fee word")


def test_v3_hops_round_trip_with_their_fee_word() -> None:
    hops = [v3(POOL_500, WETH, USDC, 5), ExecHop(PAIR_B, USDC, WETH, 30)]
    raw = encode_execute(hops, 7, 5, True)
    assert decode_execute(raw).hops == tuple(hops)
    assert [h.fee_word for h in hops] == [0x10001F4, 30]
    with pytest.raises(ValueError, match="V2 fee 10000 bps out of range"):
        encode_execute([ExecHop(PAIR_A, WETH, USDC, 10_000)], 1, 1, False)


def test_v3_factories_come_from_the_config() -> None:
    """contracts.v3_dexes (a live chain) reach the gate with the V3 init code hash by default."""
    base = settings().model_dump()
    base["contracts"]["v3_dexes"] = [{"name": "A3", "factory": FACTORY_V3}]
    configured = Settings.model_validate(base)
    contracts = load_contracts(configured)
    assert contracts.v3_dexes == (V3Dex("A3", FACTORY_V3, UNISWAP_V3_INIT_CODE_HASH),)
    gate = Policy.from_settings(configured, contracts)
    ok = bundle(data=data(v3(POOL_500, WETH, USDC, 5), ExecHop(PAIR_A, USDC, WETH, 30)))
    assert isinstance(decide(ok, gate, HEAD, Spend()), SendPlan)


def test_a_message_hop_maps_onto_its_executor_hop() -> None:
    """detect's `messages.Hop` (kind, fee in bps; a V3 tier is fee_bps * 100 pips) is what
    simulate encodes: the 500-pip tier becomes the fee word V3_HOP | 500."""
    hop = Hop(kind="v3", pool=POOL_500, token_in=WETH, token_out=USDC, fee_bps=5,
              amount_in=1, amount_out=1)  # fmt: skip
    assert ExecHop.of(hop) == v3(POOL_500, WETH, USDC, 5)
    assert ExecHop.of(hop).fee_word == V3_HOP | 500
    v2 = hop.model_copy(update={"kind": "v2", "pool": PAIR_A, "fee_bps": 30})
    assert ExecHop.of(v2).fee_word == 30
