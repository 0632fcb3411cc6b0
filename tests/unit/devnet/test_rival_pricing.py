"""The devnet rival's own V2 pricing: decoding, applying a victim, the cycle optimum, fees."""

from __future__ import annotations

import pytest
from eth_abi import encode
from mev_ops.devnet.rival_pricing import (
    ETH_FOR_TOKENS,
    TOKENS_FOR_TOKENS,
    Market,
    Pair,
    VictimSwap,
    backrun_fees,
    best_backrun,
    decode_swap,
    optimal_input,
    walk,
)

W = "0x" + "00" * 19 + "01"  # WETH
U = "0x" + "00" * 19 + "02"
D = "0x" + "00" * 19 + "03"
ROUTER_A = "0x" + "aa" * 20
ROUTER_B = "0x" + "bb" * 20
ROUTER_A_CS = "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"


def market(fee: int = 30) -> Market:
    pairs = [Pair("A-WU", W, U, fee), Pair("B-WU", W, U, fee), Pair("A-UD", U, D, fee),
             Pair("B-WD", W, D, fee)]  # fmt: skip
    routers = {"A-WU": ROUTER_A_CS, "B-WU": "B", "A-UD": ROUTER_A_CS, "B-WD": "B"}
    return Market(pairs, routers)


def test_two_pool_optimum_by_hand_without_fees() -> None:
    """out1 = 400x/(100+x), out2 = 100y/(100+y): A = 40,000, B = 10,000, C = 100 + 400 = 500,
    x* = (sqrt(A B) - B) / C = (20,000 - 10,000) / 500 = 20; 20 -> 66 -> 39, profit 19."""
    m = market(fee=0)
    reserves = {"B-WU": (100, 400), "A-WU": (100, 100)}
    cycle = next(c for c in m.cycles_through(W, {"B-WU"}) if c[0].pair == "B-WU")
    assert [h.pair for h in cycle] == ["B-WU", "A-WU"]
    assert optimal_input(cycle, reserves, m) == 20
    assert walk(cycle, 20, reserves, m) == 39
    # the other direction buys where WETH is dear: no input gains
    back = next(c for c in m.cycles_through(W, {"B-WU"}) if c[0].pair == "A-WU")
    assert optimal_input(back, reserves, m) == 0


def test_optimum_with_fees_equals_an_exhaustive_search() -> None:
    """g = 9,970: A = 398.8e6 * 99.7e6, B = 1e16, C = 1e8 * 9,970 + 9,970 * 398.8e6; sqrt(A B)
    = 1.994e16 exactly, so x* = 0.994e16 / 4.973036e12 = 1,998.78, floored 1,998; and no
    integer input from 0 to 9,999 gains more than that one."""
    m = market()
    reserves = {"B-WU": (10_000, 40_000), "A-WU": (10_000, 10_000)}
    cycle = next(c for c in m.cycles_through(W, {"B-WU"}) if c[0].pair == "B-WU")
    profits = [walk(cycle, x, reserves, m) - x for x in range(0, 10_000)]
    best = max(profits)
    x = optimal_input(cycle, reserves, m)
    assert (x, best) == (1_998, 1_986)
    assert profits[x] == best


def test_cycles_through_a_touched_pair() -> None:
    m = market()
    cycles = {tuple(h.pair for h in c) for c in m.cycles_through(W, {"A-UD"})}
    # WETH -> USDC on either DEX, USDC -> DAI on A, DAI -> WETH on B; and the reverse
    assert cycles == {("A-WU", "A-UD", "B-WD"), ("B-WU", "A-UD", "B-WD"),
                      ("B-WD", "A-UD", "A-WU"), ("B-WD", "A-UD", "B-WU")}  # fmt: skip
    assert len(m.cycles_through(W, {"A-WU"})) == 2 + 2  # two 2-pool and two 3-pool


def test_decode_router_swaps() -> None:
    routers = {ROUTER_A_CS}
    args = encode(["uint256", "uint256", "address[]", "address", "uint256"],
                  [5_000, 4_000, [W, U, D], W, 99])  # fmt: skip
    swap = decode_swap(ROUTER_A, "0x" + (TOKENS_FOR_TOKENS + args).hex(), 0, routers)
    assert swap is not None and (swap.amount_in, len(swap.path)) == (5_000, 3)
    assert swap.router == ROUTER_A_CS
    eth = encode(["uint256", "address[]", "address", "uint256"], [1, [W, U], W, 99])
    swap = decode_swap(ROUTER_A, "0x" + (ETH_FOR_TOKENS + eth).hex(), 7_000, routers)
    assert swap is not None and swap.amount_in == 7_000
    assert decode_swap(ROUTER_B, "0x" + (TOKENS_FOR_TOKENS + args).hex(), 0, routers) is None
    assert decode_swap(ROUTER_A, "0x12345678" + args.hex(), 0, routers) is None
    assert decode_swap(None, "0x", 0, routers) is None


def test_apply_a_two_hop_victim() -> None:
    """1,000 W -> U on A (997 net of fee): 997*4000/(10,000+997) = 362; 362 U -> D: 36."""
    m = market()
    reserves = {"A-WU": (10_000, 4_000), "A-UD": (1_000, 100)}
    swap = decode_swap(
        ROUTER_A,
        "0x" + (TOKENS_FOR_TOKENS + encode(["uint256", "uint256", "address[]", "address",
                                            "uint256"], [1_000, 0, [W, U, D], W, 1])).hex(),
        0,
        {ROUTER_A_CS},
    )  # fmt: skip
    assert swap is not None
    assert m.apply(reserves, swap) == ["A-WU", "A-UD"]
    assert reserves == {"A-WU": (11_000, 3_638), "A-UD": (1_362, 74)}
    unknown = VictimSwap(ROUTER_A_CS, (W, D), 10)  # no W/D pair on A
    assert m.apply(reserves, unknown) is None


def test_best_backrun_respects_the_floor() -> None:
    m = market(fee=0)
    reserves = {"B-WU": (100, 400), "A-WU": (100, 100), "A-UD": (1, 1), "B-WD": (1, 1)}
    plan = best_backrun(m, reserves, W, {"B-WU"}, min_profit=19)
    assert plan is not None and (plan.amount_in, plan.profit, len(plan.hops)) == (20, 19, 2)
    assert best_backrun(m, reserves, W, {"B-WU"}, min_profit=20) is None


@pytest.mark.parametrize(
    ("victim_tip", "victim_max_fee", "expected"),
    [(10**9, 10**9 + 10**6, (10**9 + 10**6, 10**9 - 1)), (1, 1, (1, 0)), (5, 3, (3, 2))],
)
def test_backrun_fees_are_the_victims_own(
    victim_tip: int, victim_max_fee: int, expected: tuple[int, int]
) -> None:
    assert backrun_fees(victim_tip, victim_max_fee) == expected
