"""The gate: one bundle that passes with its exact transaction, and each forgery refused with
its exact reason (the attacks of issue 11, without a chain)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import to_checksum_address
from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, v2_pair_address

from services.submit.decide import Refusal, SendPlan, decide
from services.submit.limits import Spend
from tests.unit.submit.gate_world import (
    EXECUTOR,
    GAS,
    GWEI,
    HEAD,
    PAIR_A,
    PAIR_B,
    PROFIT,
    USDC,
    WETH,
    bundle,
    calldata,
    policy,
)

ATTACKER = to_checksum_address("0x" + "66" * 20)
OTHER_FACTORY_PAIR = v2_pair_address("0x" + "99" * 20, WETH, USDC, UNISWAP_V2_INIT_CODE_HASH)


def test_a_proven_bundle_becomes_the_exact_transaction() -> None:
    plan = decide(bundle(), policy(), HEAD, Spend())
    assert isinstance(plan, SendPlan)
    # max fee: min(bundle cap 20 gwei, 2 x next base 1 gwei + priority 1 gwei)
    assert plan.tx(7) == {
        "type": 2,
        "chainId": 31337,
        "nonce": 7,
        "to": EXECUTOR,
        "value": 0,
        "data": calldata(),
        "gas": GAS,
        "maxFeePerGas": 3 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    assert plan.pools == {PAIR_A, PAIR_B}
    assert plan.max_cost == GAS * 3 * GWEI


def test_the_pair_helper_matches_uniswap_mainnet() -> None:
    # Uniswap V2 factory, USDC, WETH -> the USDC/WETH pair on Ethereum mainnet
    assert (
        v2_pair_address(
            "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f",
            "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            UNISWAP_V2_INIT_CODE_HASH,
        )
        == "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"
    )


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("chain", {"chain_id": 1}, "bundle for chain 1, this submitter signs for 31337"),
    ("to", {"to": WETH}, f"bundle.to {WETH} is not the configured executor {EXECUTOR}"),
    ("value", {"value": 1}, "bundle.value is 1 wei: an executor call never carries value"),
    ("disabled", {"strategy": "backrun"}, "strategy backrun is not enabled"),
    (
        "gas over cap",
        {"gas_limit": 600_001},
        "gas limit 600001 above strategies.cross_dex_arbitrage.gas_limit 600000",
    ),
    ("stale", {"deadline_block": HEAD.number}, "deadline block 100 passed (head 100)"),
    (
        "block trade of an older block",  # lands behind swaps detect no longer checks it against
        {"block_number": HEAD.number - 1},
        "proven on block 99, head is 100: its state is gone",
    ),
    (
        "far deadline",
        {"deadline_block": HEAD.number + 10**6},
        "deadline block 1000100 is more than detect.deadline_blocks (2) past the chain head 100",
    ),
    (
        "profit token",
        {"profit_token": USDC},
        f"profit token {USDC} is not allowlisted (submit.profit_tokens)",
    ),
    ("no executor call", {"data": "0xdeadbeef"}, "data is not an executor call: selector"),
    (
        "trailing bytes",
        {"data": calldata() + "00" * 32},
        "data is not an executor call: bytes beyond the encoded execute arguments",
    ),
    (
        "min profit claim",
        {"min_profit": PROFIT - 1},
        f"calldata minProfit {PROFIT} is not the bundle's {PROFIT - 1}",
    ),
    (
        "min profit above simulated",
        {"simulated_profit": PROFIT - 1},
        f"calldata minProfit {PROFIT} above the simulated profit {PROFIT - 1}",
    ),
    ("flash claim", {"flash": True}, "calldata flash=False is not the bundle's flash=True"),
    (
        "zero min profit",
        {"data": calldata(min_profit=0), "min_profit": 0},
        "calldata minProfit is 0: the chain would not enforce a profit",
    ),
    (
        "too many hops",
        {"data": calldata(hops=[(PAIR_A, WETH, USDC, 30)] * 3)},
        "3 hops; strategies.cross_dex_arbitrage.max_hops is 2",
    ),
    (
        "profit token not the first hop's input",
        {"data": calldata(hops=[(PAIR_B, USDC, WETH, 30), (PAIR_A, WETH, USDC, 30)])},
        f"profit token {WETH} is not the first hop's input {USDC}",
    ),
    (
        "open cycle",
        {"data": calldata(hops=[(PAIR_A, WETH, USDC, 30), (PAIR_B, WETH, USDC, 30)])},
        f"hop 0 ends in {USDC}, hop 1 starts with {WETH}: not a closed cycle",
    ),
    (
        "attacker pair",
        {"data": calldata(hops=[(ATTACKER, WETH, USDC, 30), (PAIR_B, USDC, WETH, 30)])},
        f"hop 0 pool {ATTACKER} is not the {WETH}/{USDC} pair of any configured factory",
    ),
    (
        "pair of an unknown factory",
        {"data": calldata(hops=[(PAIR_A, WETH, USDC, 30), (OTHER_FACTORY_PAIR, USDC, WETH, 30)])},
        f"hop 1 pool {OTHER_FACTORY_PAIR} is not the {USDC}/{WETH} pair of any configured factory",
    ),
    (
        "fee",
        {"data": calldata(hops=[(PAIR_A, WETH, USDC, 0), (PAIR_B, USDC, WETH, 30)])},
        "hop 0 fee 0 bps; A pairs charge 30",
    ),
    (
        "min profit below gas",
        {
            "data": calldata(min_profit=GAS * 3 * GWEI - 1),
            "min_profit": GAS * 3 * GWEI - 1,
        },
        f"calldata minProfit {GAS * 3 * GWEI - 1} is below the gas it may cost "
        f"({GAS} gas x {3 * GWEI} wei = {GAS * 3 * GWEI}): the trade could land at a net loss",
    ),
    ("fee cap", {"max_fee_per_gas": GWEI // 2}, "base fee 1000000000 above the fee cap 500000000"),
]


@pytest.mark.parametrize(
    ("fields", "reason"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_each_forgery_is_refused_with_its_reason(fields: dict[str, Any], reason: str) -> None:
    refusal = decide(bundle(**fields), policy(), HEAD, Spend())
    assert isinstance(refusal, Refusal)
    if reason.endswith("selector"):
        assert (
            refusal.reason
            == "data is not an executor call: not an execute call: selector 0xdeadbeef"
        )
    else:
        assert refusal.reason == reason
    assert refusal.trip is False


def test_a_backrun_of_an_older_block_is_refused_too() -> None:
    # its victim may be mined already (bench's backrun flow: mined in N + 1, ours sent after)
    late = bundle(block_number=HEAD.number - 1, victim_tx_hash="0x" + "ab" * 32)
    refusal = decide(late, policy(), HEAD, Spend())
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "proven on block 99, head is 100: its state is gone"
    assert isinstance(
        decide(bundle(victim_tx_hash="0x" + "ab" * 32), policy(), HEAD, Spend()), SendPlan
    )


def test_allowlisted_profit_tokens_extend_weth() -> None:
    usdc_cycle = calldata(hops=[(PAIR_B, USDC, WETH, 30), (PAIR_A, WETH, USDC, 30)])
    b = bundle(data=usdc_cycle, profit_token=USDC)
    assert isinstance(decide(b, policy(), HEAD, Spend()), Refusal)
    assert isinstance(decide(b, policy(profit_tokens=[USDC]), HEAD, Spend()), SendPlan)


def test_limits_refuse_and_trip() -> None:
    cost = GAS * 3 * GWEI
    over_tx = decide(bundle(), policy(max_tx_cost=cost - 1), HEAD, Spend())
    assert over_tx == Refusal(
        f"tx_cost: gas limit x max fee = 0.0012 ether above submit.max_tx_cost "
        f"{(cost - 1) / 10**18:.18f}".rstrip("0")
        + " ether",
        trip=True,
    )
    budget = policy(daily_gas_budget=10**16)
    assert isinstance(decide(bundle(), budget, HEAD, Spend(gas_spent=10**16 - cost)), SendPlan)
    over_day = decide(bundle(), budget, HEAD, Spend(gas_spent=10**16 - cost, in_flight_cost=1))
    assert isinstance(over_day, Refusal) and over_day.trip
    assert over_day.reason.startswith("daily_gas_budget: spent 0.0088 ether + in flight 1 wei")
