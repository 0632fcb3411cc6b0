"""services/detect/follow_on.py: the cycle our best backrun leaves open, sized on the state after
our backrun's exact hop amounts (three WETH/USDC pairs: a victim cheapens WETH on A, our backrun
takes A -> B, and A -> C, sharing pool A, is still open behind it)."""

from __future__ import annotations

from functools import partial

from eth_utils import to_checksum_address
from mev_common.amm.cycles import CycleIndex, cycle_reserves, find_cycles
from mev_common.amm.sizing import size_trade
from mev_common.amm.v2 import V2Pool, pair_key
from mev_common.settings import StrategiesSettings

from services.detect.follow_on import after_trade, follow_on, follow_ons
from services.detect.search import Found, search

WETH = to_checksum_address("0x" + "01" * 20)
USDC = to_checksum_address("0x" + "02" * 20)
A, B, C = (to_checksum_address(f"0x{0xAA00 + i:040x}") for i in range(3))
E18, E6 = 10**18, 10**6
T0, T1 = pair_key(WETH, USDC)
assert T0 == WETH


def _pool(address: str, weth: int, usdc: int) -> V2Pool:
    return V2Pool(address, T0, T1, weth, usdc, 30)


def _strategies() -> StrategiesSettings:
    cfg = {"max_gas_price": 50 * 10**9, "min_profit": 10**14}
    return StrategiesSettings.model_validate(
        {"cross_dex_arbitrage": cfg, "cyclic_arbitrage": cfg, "backrun": cfg}
    )


# after the victim: WETH at 2,700 USDC on A, 3,000 on B and C
POST = {A: _pool(A, 100 * E18, 270_000 * E6), B: _pool(B, 100 * E18, 300_000 * E6),
        C: _pool(C, 100 * E18, 300_000 * E6)}  # fmt: skip
INDEX = CycleIndex(find_cycles(POST.values(), [WETH], max_hops=3))
SEARCH = partial(search, strategies=_strategies(), base_fee=10**9, backrun=True)


def test_after_trade_applies_the_exact_hop_amounts() -> None:
    first = SEARCH(INDEX.touching([A]), POST)[0]
    assert set(first.cycle.pools) in ({A, B}, {A, C})
    moved = after_trade(first, POST)
    assert moved is not None
    x, (usdc_out, weth_back) = first.trade.amount_in, first.trade.amounts_out
    other, a = first.cycle.pools  # sell WETH where it is dear (B or C), buy it back on A
    assert a == A
    sold, bought = POST[other], POST[A]
    assert moved[other] == sold._replace(
        reserve0=sold.reserve0 + x, reserve1=sold.reserve1 - usdc_out
    )
    assert moved[A] == bought._replace(
        reserve0=bought.reserve0 - weth_back, reserve1=bought.reserve1 + usdc_out
    )
    assert first.trade.profit == weth_back - x > 0


def test_follow_on_is_the_open_cycle_sharing_a_pool_sized_after_our_trade() -> None:
    first = SEARCH(INDEX.touching([A]), POST)[0]
    # the victim's own search keeps pool-disjoint cycles only: A -> C is not among them
    assert [f.cycle for f in SEARCH(INDEX.touching([A]), POST)] == [first.cycle]
    result = follow_on(first, POST, INDEX, {}, SEARCH)
    assert result is not None
    more, state = result
    other = ({A, B, C} - set(first.cycle.pools)).pop()
    assert set(more.cycle.pools) == {A, other}
    moved = after_trade(first, POST)
    assert moved is not None
    assert state == {**POST, **moved}
    # sized exactly as the search sizes a cycle, on the state after our trade
    assert more.trade == size_trade(cycle_reserves(more.cycle, state))
    assert 0 < more.trade.profit < first.trade.profit


def test_no_follow_on_when_our_trade_leaves_nothing() -> None:
    two = {A: POST[A], B: POST[B]}  # one cycle (both directions): ours closes it
    index = CycleIndex(find_cycles(two.values(), [WETH], max_hops=3))
    first = SEARCH(index.touching([A]), two)[0]
    assert follow_on(first, two, index, {}, SEARCH) is None


def test_a_pool_missing_from_the_state_stops_the_follow_on() -> None:
    first = SEARCH(INDEX.touching([A]), POST)[0]
    assert after_trade(first, {A: POST[A]}) is None


def test_follow_ons_chain_each_on_the_state_after_the_one_before() -> None:
    first = SEARCH(INDEX.touching([A]), POST)[0]
    one = follow_on(first, POST, INDEX, {}, SEARCH)
    assert one is not None
    assert follow_ons(first, POST, INDEX, {}, SEARCH, 0) == []
    assert follow_ons(first, POST, INDEX, {}, SEARCH, 1) == [one]
    chain = follow_ons(first, POST, INDEX, {}, SEARCH, 3)
    assert chain[0] == one
    assert len(chain) == 2  # two follow-ons pay here, a third does not
    second, state = chain[1]
    assert second == follow_on(one[0], one[1], INDEX, {}, SEARCH)[0]  # type: ignore[index]
    after_one = after_trade(one[0], one[1])
    assert after_one is not None
    assert state == {**one[1], **after_one}
    assert second.trade == size_trade(cycle_reserves(second.cycle, state))
    assert set(second.cycle.pools) & set(one[0].cycle.pools)


def test_a_follow_on_is_never_a_cycle_already_ours_for_the_victim() -> None:
    # the same cycle is the same opportunity id: a follow-on that reopens our first cycle (or
    # one of the victim's other backruns, `taken`) would publish that id twice
    first = SEARCH(INDEX.touching([A]), POST)[0]
    one = follow_on(first, POST, INDEX, {}, SEARCH)
    assert one is not None
    assert follow_on(first, POST, INDEX, {}, SEARCH, taken={one[0].cycle}) != one

    def offers_ours_first(cycles: object, state: dict[str, V2Pool], **_: object) -> list[Found]:
        return [first, one[0], *SEARCH(cycles, state)]  # type: ignore[arg-type]  # until ignored

    chain = follow_ons(first, POST, INDEX, {}, offers_ours_first, 3, taken=[])
    cycles = [first.cycle, *(f.cycle for f, _ in chain)]
    assert len(chain) == 2 and len(set(cycles)) == 3
