"""V2 sizing through two coarse middle tokens (middle_hits.py): its rotation parts against brute
force, and its answers against the complete window search and the search it replaced."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from math import isqrt

import pytest
from mev_common.amm import middle_hits, sawtooth, sizing
from mev_common.amm.cycles import cycle_reserves
from mev_common.amm.middle_hits import SCALE, _least_multiple_in, returns_and_hit
from mev_common.amm.sizing import CycleTrade, compose, size_trade
from mev_common.amm.v2 import min_amount_in

from bench.scenarios.amm_peer import MAX_INPUT, make_cases
from tests.unit.amm.test_sizing import profit_at, two_coarse_cycle, window_optimum

# Bench scenario 5's cycle (seeded devnet pools, WETH -> USDC -> USDT -> WETH) where the search
# before stopped 79,118 wei short (default) and 9,631 wei short (gap_ppm=0, its "proven" mode).
SHORT_BEFORE = [
    (1480331017223725835687, 4707270447627, 30),
    (3239896616413, 3404983085460, 30),
    (4057170226185, 1358076995843716828160, 30),
]
# Bench scenario 5's cycle 82 (optimum ~6.1 WETH), the cap 1 WETH: the search before stopped
# 184,381,771 wei short (default and gap_ppm=0 alike).
CAPPED_SHORT_BEFORE = [
    (1028877298657477599580, 3239533602006, 30),
    (2456232449254, 2434720826303, 30),
    (3572518267477, 1199420978194726649856, 30),
]


@contextmanager
def search_before() -> Iterator[None]:
    """size_trade as before middle_hits: its exact searches give up, the walk and descent run."""
    exact, capped = sizing.exact_middle, sizing.capped_middle
    sizing.exact_middle = lambda *_: None  # type: ignore[assignment]
    sizing.capped_middle = lambda *_: None  # type: ignore[assignment]
    try:
        yield
    finally:
        sizing.exact_middle, sizing.capped_middle = exact, capped


def test_returns_and_hit_are_the_least_returns_and_a_hit() -> None:
    rng = random.Random(3)
    checked = 0
    for _ in range(600):
        beta, y = rng.randrange(1, SCALE), rng.randrange(SCALE)
        length = int(SCALE * 10 ** rng.uniform(-3.5, -1.5))
        found = returns_and_hit(beta, y, length)
        assert found is not None
        a, ea, b, eb, shift, y_hit = found
        assert (y + shift * beta) % SCALE == y_hit < length  # a hit, `shift` away
        assert ea == a * beta % SCALE < length and eb == b * beta % SCALE - SCALE > -length
        if max(a, b) < 5_000:  # none shorter returns (first returns: the three-gap steps)
            assert all(length <= n * beta % SCALE for n in range(1, a))
            assert all(n * beta % SCALE <= SCALE - length for n in range(1, b))
            checked += 1
    assert checked > 100


def test_a_rate_on_an_integer_has_no_rotation() -> None:
    assert returns_and_hit(0, 5, SCALE // 100) is None  # the waste never moves: give up


def test_the_three_steps_visit_every_hit_in_order() -> None:
    """From a hit, a on if y + ea < length, else b on if y + eb >= 0, else a + b on."""
    rng = random.Random(8)
    for _ in range(60):
        beta, length = rng.randrange(1, SCALE), int(SCALE * rng.uniform(0.002, 0.05))
        found = returns_and_hit(beta, 0, length)
        assert found is not None
        a, ea, b, eb, shift, y = found
        u, walked = shift, [shift]
        while u < shift + 20_000:
            if y + ea < length:
                u, y = u + a, y + ea
            elif y + eb >= 0:
                u, y = u + b, y + eb
            else:
                u, y = u + a + b, y + ea + eb
            walked.append(u)
        hits = [n for n in range(shift, u + 1) if (n * beta) % SCALE < length]
        assert walked == hits


def test_least_multiple_in_range() -> None:
    rng = random.Random(1)
    for _ in range(4_000):
        modulus = rng.randint(2, 400)
        step, low = rng.randrange(modulus), rng.randrange(modulus)
        high = rng.randrange(low, modulus)
        expected = next((n for n in range(2 * modulus) if low <= n * step % modulus <= high), None)
        assert _least_multiple_in(step, low, high, modulus) == expected


def test_a_bench_cycle_the_search_before_missed() -> None:
    """Both the default and the gap_ppm=0 mode of before stopped short of the optimum here."""
    trade = size_trade(SHORT_BEFORE, MAX_INPUT)
    assert trade == CycleTrade(
        21460114572861796102,
        (67066466882, 68851375688, 22595524027824689004),
        1135409454962892902,
    )
    assert window_optimum(SHORT_BEFORE, trade.profit, MAX_INPUT) == trade.profit
    assert size_trade(SHORT_BEFORE, MAX_INPUT, gap_ppm=0, max_steps=0) == trade
    with search_before():
        default = size_trade(SHORT_BEFORE, MAX_INPUT)
        proven = size_trade(SHORT_BEFORE, MAX_INPUT, gap_ppm=0, max_steps=0)
    assert default is not None and trade.profit - default.profit == 79_118
    assert proven is not None and trade.profit - proven.profit == 9_631


def test_the_default_is_the_proven_optimum_on_deep_pools() -> None:
    """Every first-hop output whose least input could beat the answer is tried (window_optimum)
    and none does, with and without an input cap above the optimum."""
    rng = random.Random(47)
    sized = 0
    while sized < 10:
        path = two_coarse_cycle(rng)
        trade = size_trade(path)
        if trade is None:
            continue
        sized += 1
        assert window_optimum(path, trade.profit) == trade.profit, path
        big_a, big_b, big_c = compose(path)
        cap = (isqrt(big_a * big_b) - big_b) // big_c + rng.randint(1, 10**18)
        assert size_trade(path, cap) == trade  # a cap above the optimum changes nothing
        assert size_trade(path, min_profit=trade.profit + 1) is None
        assert size_trade(path, min_profit=trade.profit) == trade


def test_small_pools_wide_windows_exact_or_the_search_before() -> None:
    """Pools of ~0.1 WETH: the window is wide beside the top's u, so its slope and curvature
    are taken at its ends; where the model is too loose it gives up to the search before."""
    rng = random.Random(12)
    exact = gave_up = 0
    while exact < 40:
        price = rng.uniform(1_000, 4_000)
        weth_a, weth_b = rng.randint(2, 40) * 10**16, rng.randint(2, 40) * 10**16
        stable = rng.randint(50, 2_000) * 10**6
        path = [
            (weth_a, int(weth_a // 10**12 * price * rng.uniform(1.003, 1.03)), 5),
            (stable, int(stable * rng.uniform(0.995, 1.005)), rng.choice([30, 5, 1])),
            (int(weth_b // 10**12 * price), weth_b, rng.choice([30, 25])),
        ]
        big_a, big_b, big_c = curve = compose(path)
        if big_a <= big_b:
            continue
        x_top = (isqrt(big_a * big_b) - big_b) // big_c
        bound = sizing.profit_bound(path)
        proven = middle_hits.exact_middle(path, curve, x_top, bound, None, 1)
        trade = size_trade(path)
        if proven is None:
            gave_up += 1
            with search_before():
                assert size_trade(path) == trade
            continue
        assert trade == (CycleTrade(*proven[0]) if proven[0] else None)
        if trade is not None:
            exact += 1
            assert window_optimum(path, trade.profit) == trade.profit, path
    assert gave_up <= 4


def test_a_walk_past_max_visits_falls_back_to_the_search_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = two_coarse_cycle(random.Random(5))
    with search_before():
        before = size_trade(path)
    monkeypatch.setattr(middle_hits, "MAX_VISITS", 0)
    big_a, big_b, big_c = curve = compose(path)
    x_top = (isqrt(big_a * big_b) - big_b) // big_c
    assert middle_hits.exact_middle(path, curve, x_top, sizing.profit_bound(path), None, 1) is None
    assert size_trade(path) == before


def test_a_binding_cap_bench_cycle_the_search_before_missed() -> None:
    """Under a 1-WETH cap (its optimum is ~6.1 WETH) the search before took the cap's first
    middle amount u; 11 u lower the middle hop wastes less, 184,381,771 wei more profit. Only 12
    u could beat the answer (the curve's lower root at its profit, up to the cap's u): each is
    tried here."""
    cap = 10**18
    trade = size_trade(CAPPED_SHORT_BEFORE, cap)
    assert trade == CycleTrade(
        999999996554250341, (3136125442, 3095393004, 1035221148470354980), 35221151916104639
    )
    low, high = sawtooth.window(
        compose(CAPPED_SHORT_BEFORE), CAPPED_SHORT_BEFORE[:1], trade.profit, cap
    )
    assert (low, high) == (3136125441, 3136125453)
    reserve_in, reserve_out, fee = CAPPED_SHORT_BEFORE[0]
    earned = {}
    for u in range(low, high + 1):
        least = min_amount_in(u, reserve_in, reserve_out, fee)
        if least is not None and least <= cap:
            earned[u] = profit_at(least, CAPPED_SHORT_BEFORE)
    assert len(earned) == 12 and max(earned.values()) == trade.profit == earned[3136125442]
    assert window_optimum(CAPPED_SHORT_BEFORE, trade.profit, cap) == trade.profit
    with search_before():
        default = size_trade(CAPPED_SHORT_BEFORE, cap)
        proven = size_trade(CAPPED_SHORT_BEFORE, cap, gap_ppm=0, max_steps=0)
    assert default == proven and default is not None
    assert default.amounts_out[0] == 3136125452 and trade.profit - default.profit == 184_381_771


def test_a_binding_cap_gives_the_window_optimum_never_below_before() -> None:
    """Caps from 1/5 of the optimum to just below it: the exact optimum under the cap, at
    least what the search before found, a trade wherever it found one."""
    rng = random.Random(29)
    checked = ahead = 0
    for _ in range(12):
        path = two_coarse_cycle(rng)
        big_a, big_b, big_c = compose(path)
        if big_a <= big_b:
            continue
        x_top = (isqrt(big_a * big_b) - big_b) // big_c
        for share in (0.2, 0.6, 0.9, 0.99):
            cap = int(x_top * share)
            trade = size_trade(path, cap)
            with search_before():
                before = size_trade(path, cap)
            if before is None:
                assert trade is None or window_optimum(path, 0, cap) == trade.profit
                continue
            assert trade is not None and trade.amount_in <= cap
            assert trade.amounts_out == tuple(sizing.get_amounts_out(trade.amount_in, path)[1:])
            assert window_optimum(path, trade.profit, cap) == trade.profit, (path, cap)
            assert trade.profit >= before.profit
            checked += 1
            ahead += trade.profit > before.profit
    assert (checked, ahead) == (40, 2)


def test_a_long_capped_walk_falls_back_to_the_search_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Just below the optimum the curve is flat and the walk may not end: the search before."""
    monkeypatch.setattr(middle_hits, "MAX_CAP_VISITS", 0)
    cap = 10**18
    with search_before():
        before = size_trade(CAPPED_SHORT_BEFORE, cap)
    assert size_trade(CAPPED_SHORT_BEFORE, cap) == before


@pytest.fixture(scope="module")
def bench_paths() -> list[list[tuple[int, int, int]]]:
    pools, cycles, _ = make_cases(24, 0)  # scenario 5's cycles
    by_address = {p.address: p for p in pools}
    return [cycle_reserves(c, by_address) for c in cycles]


def test_never_below_the_search_before_on_the_bench_cycles(
    bench_paths: list[list[tuple[int, int, int]]],
) -> None:
    """Every cycle of scenario 5: at least the profit of before's default and of its gap_ppm=0
    mode; a trade wherever either found one; the same answer wherever it did not search."""
    assert len(bench_paths) == 912
    answers: list[object] = []
    exact = sizing.exact_middle

    def watched(*args: object) -> object:
        answers.append(exact(*args))  # type: ignore[arg-type]
        return answers[-1]

    sizing.exact_middle = watched  # type: ignore[assignment]
    try:
        new = [size_trade(p, MAX_INPUT) for p in bench_paths]
    finally:
        sizing.exact_middle = exact
    assert len(answers) == 173 and None not in answers  # it never gave up here
    with search_before():
        old = [size_trade(p, MAX_INPUT) for p in bench_paths]
        proven = [size_trade(p, MAX_INPUT, gap_ppm=0, max_steps=0) for p in bench_paths]
    counts = {"traded": 0, "ahead": 0, "ahead of proven": 0}
    for path, n, o, e in zip(bench_paths, new, old, proven, strict=True):
        if o is None and e is None:
            assert n is None
            continue
        assert n is not None
        counts["traded"] += 1
        assert n.profit >= max(o.profit if o else 0, e.profit if e else 0)
        assert n.amounts_out == tuple(sizing.get_amounts_out(n.amount_in, path)[1:])
        counts["ahead"] += o is not None and n.profit > o.profit
        counts["ahead of proven"] += e is not None and n.profit > e.profit
        if n.profit == (o.profit if o else 0):
            continue
        assert len(path) == 3 and sawtooth.coarse_middle(path)  # only where it searches
    assert sum(n is not None for n in new) == counts["traded"] == 410
    assert counts == {"traded": 410, "ahead": 57, "ahead of proven": 1}
