"""bench.block_anatomy: a block's Sync logs replayed over the previous block's end state, and the
"landed, gap remained" split (a later swap reopened the gap, or our trade left a further cycle).
"""

from __future__ import annotations

from bench.block_anatomy import Priced, Step, gap_behind_ours, price_steps
from bench.oracle.cycles import find_cycles
from bench.oracle.opportunity import best_after_block

WETH = "0x" + "01" * 20
USDC = "0x" + "02" * 20
PA, PB = "0x" + "aa" * 20, "0x" + "bb" * 20
EXECUTOR = "0x" + "ee" * 20
E18 = 10**18
PAIRS = [
    {"address": p, "dex": d, "token0": WETH, "token1": USDC, "symbol0": "WETH",
     "symbol1": "USDC", "fee_bps": 30}
    for p, d in ((PA, "A"), (PB, "B"))
]  # fmt: skip
BALANCED = {PA: (100 * E18, 300_000 * 10**6), PB: (100 * E18, 300_000 * 10**6)}
GAS_PRICE = 10**9


def test_each_step_is_priced_on_the_reserves_every_step_before_it_left() -> None:
    cycles = find_cycles(PAIRS, WETH)
    # a user buys WETH on A (A's WETH dear), a swap on B leaves B as it was (Sync of the same
    # reserves), then ours buys back on B and sells on A: the gap after each step
    after_user = (95 * E18, 315_900 * 10**6)
    after_ours_a = (97 * E18, 309_400 * 10**6)
    after_ours_b = (102 * E18, 294_200 * 10**6)
    steps = [
        Step("0x01", "0xu1", "0xrouter", {PA: after_user}),
        Step("0x02", "0xu2", "0xrouter", {PB: BALANCED[PB]}),
        Step("0x03", "0xbot", EXECUTOR, {PA: after_ours_a, PB: after_ours_b}),
        Step("0x04", "0xu3", "0xother", {}),  # a transfer: moves no pair
    ]
    priced = price_steps(steps, BALANCED, cycles, GAS_PRICE, {"0x01", "0x02"}, EXECUTOR.upper())
    states = [
        {PA: after_user, PB: BALANCED[PB]},
        {PA: after_user, PB: BALANCED[PB]},
        {PA: after_ours_a, PB: after_ours_b},
        {PA: after_ours_a, PB: after_ours_b},
    ]
    expected = [best_after_block(0, cycles, s, GAS_PRICE) for s in states]
    assert expected[0] is not None and expected[0].net_wei > 0  # the user opened a gap
    assert [p.kind for p in priced] == ["flow", "flow", "ours", "other"]
    assert [p.pairs for p in priced] == [
        frozenset({PA}),
        frozenset({PB}),
        frozenset({PA, PB}),
        frozenset(),
    ]
    assert [p.best_net_wei for p in priced] == [e.net_wei if e else 0 for e in expected]
    assert [p.best_cycle for p in priced] == [e.cycle if e else "" for e in expected]


def _p(index: int, kind: str, net: int, *pairs: str) -> Priced:
    return Priced(index, kind, frozenset(pairs), "c", net)


def test_gap_behind_ours_splits_later_swap_from_further_cycle() -> None:
    user, ours = _p(0, "flow", 410, PA), _p(1, "ours", 283, PA, PB)
    # the scenario's block: 0.41 opened, ours left 0.283, a later swap moved it to 0.287
    assert gap_behind_ours([user, ours, _p(2, "flow", 287, PB)]) == (
        "further cycle left by our trade"
    )
    assert gap_behind_ours([user, ours]) == "further cycle left by our trade"
    # exactly half the end residual left by ours: still ours (2 x 283 >= 566)
    assert gap_behind_ours([user, ours, _p(2, "flow", 566, PB)]) == (
        "further cycle left by our trade"
    )
    assert gap_behind_ours([user, ours, _p(2, "flow", 567, PB)]) == ("later swap through its pools")
    closed = _p(1, "ours", 0, PA, PB)
    assert gap_behind_ours([user, closed, _p(2, "flow", 90, PB)]) == (
        "later swap through its pools"
    )
    # the last trade of ours counts
    assert gap_behind_ours([user, closed, _p(2, "flow", 90, PB), _p(3, "ours", 50, PB)]) == (
        "further cycle left by our trade"
    )
    assert gap_behind_ours([user, _p(1, "ours", 0)]) is None  # ours moved no pair
    assert gap_behind_ours([user]) is None
