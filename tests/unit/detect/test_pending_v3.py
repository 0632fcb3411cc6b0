"""A pending SwapRouter swap in detect: which DEX's pools its path names (CREATE2 of the router's
factory), the pools after it (each hop the pool's exact swap, the next hop's input the previous
output), and None wherever SwapRouter would revert. The wei-exactness against a real pool is
tests/integration/test_backrun_v3.py's."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import to_checksum_address
from mev_common.amm.swap_router import apply_swap_router, pool_key
from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_math import MAX_SQRT_RATIO
from mev_common.chain.contracts import V3Dex, load_contracts, read_deployment
from mev_common.chain.pools import UNISWAP_V3_INIT_CODE_HASH, v3_pool_address
from mev_common.chain.swap_router_calls import (
    EXACT_INPUT,
    EXACT_INPUT_SINGLE,
    SwapRouterCallError,
    SwapRouterSwap,
)
from mev_common.messages import PendingTx
from mev_common.settings import Settings

from services.detect.pending_v3 import V3Routers
from tests.unit.detect.test_v3_detect import USDC, WETH, v3_pool
from tests.unit.submit.gate_world import settings

DAI = to_checksum_address("0x" + "0c" * 20)  # WETH < USDC < DAI
FACTORY = to_checksum_address("0x" + "fa" * 20)
OTHER_FACTORY = to_checksum_address("0x" + "fb" * 20)
ROUTER = to_checksum_address("0x" + "e1" * 20)
USER = to_checksum_address("0x" + "05" * 20)
DEX = V3Dex("A", FACTORY, UNISWAP_V3_INIT_CODE_HASH, ROUTER)
NOW = 1_700_000_000


def at(factory: str, pool: V3Pool) -> V3Pool:
    """`pool` at its CREATE2 address under `factory`."""
    address = v3_pool_address(factory, pool.token0, pool.token1, pool.fee, DEX.init_code_hash)
    return replace(pool, address=address)


WETH_USDC = at(FACTORY, v3_pool())
# USDC/DAI at 1:1 in raw units, same ranges shape
USDC_DAI = at(FACTORY, replace(v3_pool(0), token0=USDC, token1=DAI))
ELSEWHERE = at(OTHER_FACTORY, replace(v3_pool(), fee=500, tick_spacing=10))
POOLS = {p.address: p for p in (WETH_USDC, USDC_DAI, ELSEWHERE)}


def routers() -> V3Routers:
    r = V3Routers([DEX, V3Dex("B", OTHER_FACTORY)])  # B has no router: not followed
    r.reindex(POOLS.values())
    return r


def swap(tokens: list[str], fees: list[int], amount: int, min_out: int = 0, *,
         deadline: int = NOW, limit: int = 0) -> SwapRouterSwap:  # fmt: skip
    kind = "exactInputSingle" if len(fees) == 1 else "exactInput"
    return SwapRouterSwap(kind, tuple(tokens), tuple(fees), amount, min_out, USER, deadline,  # type: ignore[arg-type]
                          limit, 0)  # fmt: skip


def pending(data: bytes, to: str = ROUTER) -> PendingTx:
    return PendingTx.model_validate({
        "chain_id": 1, "hash": "0x" + "11" * 32, "from": USER, "to": to, "nonce": 0, "gas": 1,
        "input": "0x" + data.hex(),
    })  # fmt: skip


def test_pools_are_indexed_by_the_routers_factory() -> None:
    r = routers()
    assert r.index == {
        "A": {pool_key(WETH, USDC, 3000): WETH_USDC.address,
              pool_key(USDC, DAI, 3000): USDC_DAI.address},
    }  # fmt: skip
    # the same tokens and fee on another DEX's factory are not this router's pools
    assert r.touched(DEX, swap([WETH, USDC], [500], 10**18)) == []
    assert r.touched(DEX, swap([DAI, USDC, WETH], [3000, 3000], 10**18)) == [
        USDC_DAI.address, WETH_USDC.address
    ]  # fmt: skip


def test_a_single_swap_moves_its_pool_exactly() -> None:
    r = routers()
    applied = r.apply(DEX, swap([USDC, WETH], [3000], 30_000 * 10**6), POOLS, NOW)
    assert applied is not None
    result = WETH_USDC.swap(False, 30_000 * 10**6)  # USDC is token1: one for zero
    assert applied.amounts == (30_000 * 10**6, -result.amount0)
    assert applied.pools == {
        WETH_USDC.address: WETH_USDC.after_swap(result.sqrt_price_x96, result.tick,
                                                result.liquidity)
    }  # fmt: skip


def test_a_multi_hop_swap_feeds_each_output_into_the_next_pool() -> None:
    r = routers()
    amount = 5 * 10**18
    applied = r.apply(DEX, swap([WETH, USDC, DAI], [3000, 3000], amount), POOLS, NOW)
    assert applied is not None
    first = WETH_USDC.swap(True, amount)
    second = USDC_DAI.swap(True, -first.amount1)
    assert applied.amounts == (amount, -first.amount1, -second.amount1)
    assert applied.pools[USDC_DAI.address].sqrt_price_x96 == second.sqrt_price_x96
    assert applied.pools[WETH_USDC.address].tick == first.tick


def test_a_path_back_through_the_same_pool_reads_its_moved_state() -> None:
    r = routers()
    there = WETH_USDC.swap(True, 10**18)
    moved = WETH_USDC.after_swap(there.sqrt_price_x96, there.tick, there.liquidity)
    back = moved.swap(False, -there.amount1)
    applied = r.apply(DEX, swap([WETH, USDC, WETH], [3000, 3000], 10**18), POOLS, NOW)
    assert applied is not None and applied.amounts == (10**18, -there.amount1, -back.amount0)


@pytest.mark.parametrize(
    ("why", "victim"),
    [
        ("expired", swap([USDC, WETH], [3000], 10**9, deadline=NOW - 1)),
        ("too little received", swap([USDC, WETH], [3000], 10**9, min_out=10**30)),
        ("pool not known", swap([USDC, WETH], [500], 10**9)),
        ("same token twice", swap([USDC, USDC], [3000], 10**9)),
        ("zero amount", swap([USDC, WETH], [3000], 0)),
        ("over int256", swap([USDC, WETH], [3000], 2**255)),
        ("price limit on the wrong side", swap([USDC, WETH], [3000], 10**9, limit=1)),
        ("price limit past the max", swap([USDC, WETH], [3000], 10**9, limit=MAX_SQRT_RATIO)),
        ("second hop unknown", swap([WETH, USDC, WETH], [3000, 500], 10**18)),
    ],
)
def test_a_victim_that_would_revert_leaves_no_state(why: str, victim: SwapRouterSwap) -> None:
    assert routers().apply(DEX, victim, POOLS, NOW) is None, why


def test_a_price_limit_stops_the_swap_there() -> None:
    limit = WETH_USDC.sqrt_price_x96 + 10**20  # one for zero: the price rises to the limit
    applied = apply_swap_router(
        swap([USDC, WETH], [3000], 10**15, limit=limit), routers().index["A"], POOLS
    )
    assert applied is not None
    assert applied.pools[WETH_USDC.address].sqrt_price_x96 == limit


def test_decode_follows_configured_routers_only_and_refuses_malformed_calls() -> None:
    r = routers()
    params = (USDC, WETH, 3000, USER, NOW, 10**9, 0, 0)
    good = EXACT_INPUT_SINGLE + encode(
        ["(address,address,uint24,address,uint256,uint256,uint256,uint160)"], [params]
    )
    assert r.decode(pending(good)) == (DEX, swap([USDC, WETH], [3000], 10**9))
    assert r.decode(pending(good, to=USER)) is None  # not a SwapRouter
    assert r.decode(pending(bytes.fromhex("ac9650d8") + bytes(64))) is None  # multicall
    with pytest.raises(SwapRouterCallError, match="exactInput: params offset"):
        r.decode(pending(EXACT_INPUT + bytes(256)))


def test_swap_routers_come_from_the_config_and_the_deployment(tmp_path: Path) -> None:
    """`v3_dexes[i].router` (a live chain) or the deployment's `swap_router` (devnet) is where
    ingest forwards pending calls from (ChainContracts.routers, beside the Router02s)."""
    base = settings().model_dump()
    base["contracts"]["v3_dexes"] = [{"name": "A", "factory": FACTORY, "router": ROUTER}]
    contracts = load_contracts(Settings.model_validate(base))
    assert contracts.v3_dexes == (DEX,)
    assert contracts.routers == {ROUTER}  # gate_world's V2 dex has no router
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({
        "chain_id": 1, "executor": {"address": USER}, "weth": WETH, "dexes": [],
        "v3_dexes": [{"name": "A", "factory": FACTORY, "swap_router": ROUTER.lower()},
                     {"name": "B", "factory": OTHER_FACTORY}],
    }))  # fmt: skip
    deployed = read_deployment(path, 1)
    assert deployed.v3_dexes == (DEX, V3Dex("B", OTHER_FACTORY))
    assert deployed.routers == {ROUTER}
