"""reprice.py: a block trade re-priced on the state the pending swaps mined before it leave,
given up only when it pays less than its minProfit there. Hand-computed V2 numbers (fee 30 bps,
out = in*9970*r_out // (r_in*10000 + in*9970)):

Trade: 10,000 WETH into A (1,000,000 WETH / 2,000,000 USDC) -> 19,743 USDC
(199,400,000,000,000 // 10,099,700,000), into B (1,000,000 WETH / 1,800,000 USDC) -> 10,817
WETH (196,837,710,000,000 // 18,196,837,710): profit 817, minProfit floor(817 x 0.9) = 735.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from eth_utils import to_checksum_address
from mev_common.amm.v2 import V2Pool
from mev_common.messages import Hop, Opportunity, PendingTx
from mev_common.settings import StrategySettings

from services.detect.reprice import (
    MAX_CROWDERS,
    Pool,
    Trade,
    Unknown,
    min_profit_bound,
    orders,
    profit_on,
    survives,
)

WETH, USDC = to_checksum_address("0x" + "01" * 20), to_checksum_address("0x" + "02" * 20)
A, B = to_checksum_address("0x" + "aa" * 20), to_checksum_address("0x" + "bb" * 20)
POOLS: dict[str, Pool] = {
    A: V2Pool(A, WETH, USDC, 1_000_000, 2_000_000, 30),
    B: V2Pool(B, WETH, USDC, 1_000_000, 1_800_000, 30),
}
TRADE = Trade(((A, WETH), (B, USDC)), 10_000, 735, POOLS)
# what each pending swap does to pool A (sells `amount` of `token` into it)
SWAPS = {"0xusdc_in": (USDC, 100_000), "0xweth_small": (WETH, 1_000), "0xweth_big": (WETH, 50_000)}


def tx(tx_hash: str) -> PendingTx:
    """A stand-in tx whose input names the swap `replay` makes of it."""
    data = "0x" + tx_hash.encode().hex()
    fields = {"chain_id": 1, "hash": "0x" + "00" * 32, "from": WETH, "nonce": 0, "gas": 1}
    return PendingTx.model_validate({**fields, "input": data})


def replay(pending: PendingTx, state: Mapping[str, Pool]) -> Mapping[str, Pool] | None:
    name = bytes.fromhex(pending.input[2:]).decode()
    if name not in SWAPS:
        raise Unknown(name)
    token, amount = SWAPS[name]
    pool = state[A]
    assert isinstance(pool, V2Pool)
    return {**state, A: pool.with_swap(token, amount)}


def crowd(*names: str, tip: int = 5) -> list[tuple[int, str, PendingTx | None]]:
    return [(tip + i, name, tx(name)) for i, name in enumerate(names)]


def test_the_trade_on_its_own_state_pays_its_hand_computed_profit() -> None:
    assert profit_on(TRADE, POOLS) == 817


def test_a_swap_in_the_opposite_direction_keeps_the_trade() -> None:
    # A after 100,000 USDC in: 952,518 WETH / 2,100,000 USDC; the trade gets 21,752 USDC, then
    # 11,904 WETH: profit 1,904 (more than on the block's state)
    state = replay(tx("0xusdc_in"), POOLS)
    assert state is not None and state[A] == V2Pool(A, WETH, USDC, 952_518, 2_100_000, 30)
    assert profit_on(TRADE, state) == 1_904
    assert survives(TRADE, crowd("0xusdc_in"), replay)


def test_a_small_swap_in_the_same_direction_keeps_it_while_it_pays_min_profit() -> None:
    # A after 1,000 WETH in: 1,001,000 WETH / 1,998,008 USDC: 19,703 USDC, 10,795 WETH: 795
    state = replay(tx("0xweth_small"), POOLS)
    assert state is not None and profit_on(TRADE, state) == 795
    assert survives(TRADE, crowd("0xweth_small"), replay)  # 795 >= 735
    assert not survives(Trade(TRADE.hops, 10_000, 796, POOLS), crowd("0xweth_small"), replay)


def test_a_large_swap_in_the_same_direction_dooms_it() -> None:
    # A after 50,000 WETH in: 1,050,000 / 1,905,035: 17,918 USDC, 9,827 WETH: a loss of 173
    state = replay(tx("0xweth_big"), POOLS)
    assert state is not None and profit_on(TRADE, state) == -173
    assert not survives(TRADE, crowd("0xweth_big"), replay)


def test_an_improving_swap_does_not_cover_one_that_may_land_without_it() -> None:
    # the big one may land without the one that improves our price (replaced, out of funds)
    both = crowd("0xusdc_in", "0xweth_big")
    assert not survives(TRADE, both, replay)
    assert survives(TRADE, crowd("0xusdc_in", "0xweth_small"), replay)


def test_a_swap_it_cannot_replay_or_too_many_keep_the_conservative_rule() -> None:
    assert not survives(TRADE, crowd("0xusdc_in", "0xunknown"), replay)
    assert not survives(TRADE, [(5, "0xusdc_in", None)], replay)  # not held whole
    many = [(5 + i, f"0x{i}", tx("0xusdc_in")) for i in range(MAX_CROWDERS + 1)]
    assert survives(TRADE, many[:MAX_CROWDERS], replay)
    assert not survives(TRADE, many, replay)


def test_orders_are_every_subset_by_tip_ties_in_every_order() -> None:
    got = list(orders([(1, "x"), (3, "y"), (3, "z")]))
    assert got == [
        [], ["y"], ["z"], ["x"],
        ["y", "z"], ["z", "y"], ["y", "x"], ["z", "x"],
        ["y", "z", "x"], ["z", "y", "x"],
    ]  # fmt: skip


def opportunity(profit: int, max_fee: int) -> Opportunity:
    hop = Hop(pool=A, token_in=WETH, token_out=USDC, fee_bps=30, amount_in=1, amount_out=1)
    return Opportunity(
        id="o", chain_id=1, strategy="cross_dex_arbitrage", trigger="0x" + "cd" * 32,
        block_number=1, block_hash="0x" + "cd" * 32, hops=[hop, hop], amount_in=1,
        expected_profit=profit, max_fee_per_gas=max_fee,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("profit", "max_fee", "bound"),
    [
        (10**17, 5 * 10**9, 9 * 10**16),  # the share: floor(0.1 ETH x 0.9)
        (10**16, 5 * 10**9, 9 * 10**15),  # 600,000 x 5 gwei + 0.0001 ETH = 3.1e15 < 9e15
        (4 * 10**15, 5 * 10**9, 3_600_000_000_000_000),  # 3.6e15 > 3.1e15
        (3 * 10**15, 5 * 10**9, 3 * 10**15),  # the gas floor 3.1e15, never above the profit
        (10**17, 0, 9 * 10**16),  # no fee cap given: the strategy's max_gas_price
        (10**17, 200 * 10**9, 9 * 10**16),
    ],
)
def test_the_min_profit_bound_is_simulates_formula_at_the_strategys_gas_limit(
    profit: int, max_fee: int, bound: int
) -> None:
    strategy = StrategySettings(
        min_profit=10**14, max_gas_price=50 * 10**9, gas_limit=600_000, min_profit_share=0.9
    )
    assert min_profit_bound(opportunity(profit, max_fee), strategy) == bound
    assert min_profit_bound(opportunity(profit, max_fee), None) == profit


def test_the_gas_floor_binds_above_the_share() -> None:
    strategy = StrategySettings(
        min_profit=10**14, max_gas_price=50 * 10**9, gas_limit=600_000, min_profit_share=0.5
    )
    # share: 2e15; gas: 600,000 x 5 gwei + 1e14 = 3.1e15; profit 4e15
    assert min_profit_bound(opportunity(4 * 10**15, 5 * 10**9), strategy) == 3_100_000_000_000_000
