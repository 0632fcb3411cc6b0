"""Optimal input for a V2 cycle (start token -> ... -> start token), exact on integers.

Why this method: along a path of V2 pools the output is a Möbius map A*x / (B + C*x) before
rounding, for any number of hops, so the continuous optimum has one closed form,
x* = (sqrt(A*B) - B) / C, and the cycle can profit at all only if A > B. The contract rounds
down at every hop, which makes the real output a step function: between two inputs with the
same output the smaller one is strictly better, and through a 6-decimal token the steps are
~1e8 wei wide. So the search runs over "tight" inputs only (the least input that reaches its
own output, found by inverting every hop exactly), starting at the closed form and walking to
the neighbouring tight inputs on both sides. The continuous curve bounds the integer profit
from above and is concave, so the walk stops as soon as that bound proves no further input can
beat the best found, or once the best is within `gap_ppm` of the bound. Tight inputs earn
within a few units of the curve when at most one token of the path is coarse, so such trades
stop at once, 1-2 wei below the bound. Through two coarse tokens in a row (WETH -> USDC -> USDT
-> WETH) the input absorbs only the first one's rounding; the middle hop still floors away up
to one USDT unit (~3e8 wei), so such a cycle goes to middle_hits.exact_middle: every first
middle amount that could beat its answer is visited (the hits of the middle hop's rotation,
three-gap steps), so the answer is the exact optimum, whatever gap_ppm says (since 2026-12-02;
bench scenario 5: 57 of its 173 such cycles earn more than the default before, one more than
its gap_ppm=0 mode). Under an input cap below the optimum middle_hits.capped_middle walks the
first middle amounts down from the cap's, also exact. Where they give up (a model too loose, a
cap just below the optimum where the curve is flat and the walk too long) `_sawtooth_search`
runs as before: it jumps to the nearby first middle amounts where that hop wastes least
(steps from the continued fraction of its slope, rotation.py) and stops within 1/1000 of a
middle unit of the bound by default; with gap_ppm=0 it then tries every first middle amount
that could still beat the best. Only dust profits (below ~1e4 units) can walk
far; `max_steps` caps that walk, and a realistic `min_profit` skips such cycles before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import isqrt
from typing import NamedTuple

from mev_common.amm.cycles import Cycle, cycle_reserves
from mev_common.amm.middle_hits import capped_middle, exact_middle
from mev_common.amm.rotation import convergent_steps, descend
from mev_common.amm.v2 import FEE_DENOMINATOR, V2Pool, get_amounts_out

DEFAULT_MAX_STEPS = 256
DEFAULT_GAP_PPM = 100
# One unit of each middle token must be worth more than this many units of the start token for
# the middle search to pay (WETH -> USDC: ~3e8 wei a unit). Near parity (18-decimal tokens) the
# rounding waste is a few wei and the band (2) would hold almost every u: never search there.
SAWTOOTH_MIN_UNITS = 1e6
# At most this many middle amounts are measured by (2): a guard, so no pool state can make the
# search run away (detect's hot path calls it; ~5 µs a measure).
SAWTOOTH_MAX_VISITS = 20_000
SEMI_KEEP = 3
# (1) descends only where the curve is within this share of the stopping gap (MIDDLE_GAP) of
# its bound: further out a smaller waste costs more on the curve than it saves (it once landed
# 1e6 wei below the bound, at a waste of 2e-7 units, and (2) had to run: ~250 µs).
DESCENT_SHARE = 0.5
DESCENTS = 4  # passes of (1), each re-reading the slope where the last one landed
MIDDLE_GAP = 1e-3  # of one unit of the middle hop's output, in start-token units

PathReserves = Sequence[tuple[int, int, int]]


class CycleTrade(NamedTuple):
    """A sized cycle: input, exact output of every hop (last one is the return), net profit."""

    amount_in: int
    amounts_out: tuple[int, ...]
    profit: int


def compose(path_reserves: PathReserves) -> tuple[int, int, int]:
    """(A, B, C) with output ≈ A*x / (B + C*x) for the whole path, before rounding."""
    a_acc, b_acc, c_acc = 1, 1, 0
    for reserve_in, reserve_out, fee_bps in path_reserves:
        gamma = FEE_DENOMINATOR - fee_bps
        a, b = gamma * reserve_out, reserve_in * FEE_DENOMINATOR
        a_acc, b_acc, c_acc = a_acc * a, b_acc * b, c_acc * b + a_acc * gamma
    return a_acc, b_acc, c_acc


def _output(amount_in: int, path_reserves: PathReserves) -> int:
    """Exact path output; 0 where a hop would get nothing (the contract would revert)."""
    amount = amount_in
    for reserve_in, reserve_out, fee_bps in path_reserves:
        if amount <= 0:
            return 0
        with_fee = amount * (FEE_DENOMINATOR - fee_bps)
        amount = with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + with_fee)
    return amount


def _least_input(amount_out: int, path_reserves: PathReserves) -> int | None:
    """Least input whose exact path output is >= amount_out; None if the pools cannot pay it.

    Each hop is monotone, so inverting them one by one from the last hop gives the least input.
    """
    amount = amount_out
    for reserve_in, reserve_out, fee_bps in reversed(path_reserves):
        if amount >= reserve_out:
            return None
        numerator = amount * reserve_in * FEE_DENOMINATOR
        amount = -(-numerator // ((FEE_DENOMINATOR - fee_bps) * (reserve_out - amount)))
    return amount


def profit_bound(path_reserves: PathReserves, max_input: int | None = None) -> int:
    """An upper bound of the profit any input up to `max_input` can make (0 if none can).

    Rounding only ever lowers outputs, so the unrounded curve's maximum, (√A - √B)² / C, bounds
    the real profit; detect can skip sizing a cycle whose bound is below its minimum profit.
    """
    return _bound(compose(path_reserves), max_input)


def _bound(
    curve: tuple[int, int, int],
    max_input: int | None,
    root: int | None = None,
    product: int | None = None,
) -> int:
    """`profit_bound` of the curve (A, B, C); `root` = isqrt(A*B) and `product` = A*B if known."""
    big_a, big_b, big_c = curve
    if big_a <= big_b:
        return 0
    if product is None:
        product = big_a * big_b
    if root is None:
        root = isqrt(product)
    if max_input is not None:
        # (B + C*cap)**2 < A*B (the cap below the optimum), read off the root: a big square less
        top = big_b + big_c * max_input
        if top < root or (top == root and root * root < product):
            # The curve still rises at the cap: its value there.
            return max(0, -(-big_a * max_input // top) - max_input)
    return -(-(big_a + big_b - 2 * root) // big_c)


def size_trade(
    path_reserves: PathReserves,
    max_input: int | None = None,
    *,
    min_profit: int = 1,
    gap_ppm: int = DEFAULT_GAP_PPM,
    max_steps: int = DEFAULT_MAX_STEPS,
    middle_search: bool = True,
) -> CycleTrade | None:
    """Best input for a cycle given (reserve_in, reserve_out, fee_bps) per hop.

    None if no input up to `max_input` (the start token balance or flash-borrowable amount)
    makes `min_profit`. The search stops once the best found is proven optimal, or within
    `gap_ppm` parts per million of the upper bound, or after `max_steps` tight inputs each way.
    `middle_search=False` skips the search through two coarse middle tokens (the pre-2026-11-30
    default, kept so the bench can show what it gained); with it, such a cycle's answer is the
    exact optimum, `max_input` binding or not, unless the search gives up (middle_hits.py).
    Profit and amounts come from the exact getAmountOut of every hop at the chosen input.
    """
    if max_input is not None and max_input <= 0:
        return None
    # compose() inlined with the empty-pool check: one pass (the hot path runs this per cycle)
    big_a = big_b = 1
    big_c = 0
    for reserve_in, reserve_out, fee_bps in path_reserves:
        if reserve_in <= 0 or reserve_out <= 0:
            return None  # an empty pool reverts INSUFFICIENT_LIQUIDITY
        gamma, scaled_in = FEE_DENOMINATOR - fee_bps, reserve_in * FEE_DENOMINATOR
        big_c = big_c * scaled_in + big_a * gamma
        big_a *= gamma * reserve_out
        big_b *= scaled_in
    if big_a <= big_b:
        return None
    product = big_a * big_b
    root = isqrt(product)
    floor_min = min_profit if min_profit > 1 else 1
    curve = (big_a, big_b, big_c)
    bound = _bound(curve, max_input, root, product)
    if bound < floor_min:
        return None

    start = (root - big_b) // big_c
    if start < 1:
        start = 1
    if max_input is not None and start > max_input:
        start = max_input
    coarse = middle_search and len(path_reserves) == 3 and _coarse_middle(path_reserves)
    if coarse:
        if max_input is not None and start >= max_input:  # the cap binds: the curve rises to it
            proven = capped_middle(path_reserves, curve, max_input, floor_min)
        else:
            proven = exact_middle(path_reserves, curve, start, bound, max_input, floor_min)
        if proven is not None:  # the exact optimum (middle_hits.py)
            found = proven[0]
            return None if found is None else CycleTrade(*found)
    return _walk(path_reserves, curve, start, bound, max_input, floor_min, gap_ppm, max_steps,
                 coarse)  # fmt: skip


def _walk(
    path_reserves: PathReserves,
    curve: tuple[int, int, int],
    start: int,
    bound: int,
    max_input: int | None,
    floor_min: int,
    gap_ppm: int,
    max_steps: int,
    coarse: bool,
) -> CycleTrade | None:
    """size_trade's search from the floor of the unrounded optimum `start`: the tight inputs
    up and down from it (after `_sawtooth_search` where the middle search gave up)."""
    big_a, big_b, big_c = curve
    product = big_a * big_b
    # Each walk stops where x is past the optimum, (B + C*x)**2 >= A*B, and the unrounded
    # profit there (an upper bound of the real one) is at most the best: A*x <= (best + x) *
    # (B + C*x). Inlined (no closures: most cycles stop at once, a closure costs more).
    # within gap_ppm of the bound: (bound - profit) * 1e6 <= profit * gap_ppm
    enough = max(1, -(-bound * 1_000_000 // (1_000_000 + gap_ppm)))
    best_out = _output(start, path_reserves)
    best_in = (_least_input(best_out, path_reserves) or start) if best_out > 0 else start
    best_profit = best_out - best_in
    first_tight = best_in
    if coarse and best_out > 0:  # middle_hits gave up: the walk and descent of before
        jump = _sawtooth_search(
            path_reserves,
            curve,
            best_in,
            best_profit,
            max_input,
            bound,
            gap_ppm == 0,
        )
        if jump is not None:
            best_in, best_out, best_profit = jump

    # Upward: the next tight input is the least one that earns one more unit of output.
    x_tight, out_tight = best_in, best_out
    for _ in range(max_steps):
        if best_profit >= enough:
            break
        x_next = _least_input(out_tight + 1, path_reserves)
        if x_next is None or (max_input is not None and x_next > max_input):
            break
        den = big_b + big_c * x_next
        if den * den >= product and big_a * x_next <= (best_profit + x_next) * den:
            break
        x_tight, out_tight = x_next, _output(x_next, path_reserves)
        if out_tight - x_tight > best_profit:
            best_in, best_out, best_profit = x_tight, out_tight, out_tight - x_tight

    # Downward: the previous tight input is the least one reaching what one wei less gives.
    x_tight = first_tight
    for _ in range(max_steps):
        x_below = x_tight - 1
        if best_profit >= enough or x_below < 1:
            break
        den = big_b + big_c * x_below
        if den * den < product and big_a * x_below <= (best_profit + x_below) * den:
            break
        out_tight = _output(x_below, path_reserves)
        if out_tight <= 0:
            break
        x_tight = _least_input(out_tight, path_reserves) or x_below
        if out_tight - x_tight > best_profit:
            best_in, best_out, best_profit = x_tight, out_tight, out_tight - x_tight

    if best_profit < floor_min:
        return None
    amounts = get_amounts_out(best_in, path_reserves)
    return CycleTrade(best_in, tuple(amounts[1:]), amounts[-1] - best_in)


def _coarse_middle(path_reserves: PathReserves) -> bool:
    """Whether both middle tokens of a 3-hop cycle are coarse: one unit of each is worth more
    than SAWTOOTH_MIN_UNITS of the start token (WETH -> USDC -> USDT -> WETH)."""
    value = 1.0
    for reserve_in, reserve_out, fee_bps in path_reserves[:2]:
        value *= reserve_in * FEE_DENOMINATOR / ((FEE_DENOMINATOR - fee_bps) * reserve_out)
        if value <= SAWTOOTH_MIN_UNITS:
            return False
    return True


def _sawtooth_search(
    path_reserves: PathReserves,
    curve: tuple[int, int, int],
    start_in: int,
    start_profit: int,
    max_input: int | None,
    bound: int,
    exact: bool,
) -> tuple[int, int, int] | None:
    """Best (input, output, profit) beating `start_profit` where the middle hop wastes least.

    Through two coarse tokens (USDC -> USDT) the middle hop floors away up to one unit of the
    second (~3e8 wei of WETH); the input absorbs only the first hop's rounding. Over the first
    middle amount u the middle hop's exact output is N(u) / D(u), nearly linear, so its waste
    frac(N(u) / D(u)) is a rotation: (1) descend to a small waste by the convergent jumps of
    its slope (rotation.descend: the greedy Ostrowski walk on integers, each landing checked
    exactly as the slope drifts), within the u whose curve is near the bound; then
    (2) any u that beats the best must waste less than (bound - best) / (the last hop's least
    slope) there, so visit every such u reachable by (semi)convergent steps (the gaps between
    such points, by the three-gap theorem) and measure each exactly. Unless `exact`, (2) is
    skipped when (1) ends within MIDDLE_GAP of one middle unit of the bound (~200 µs saved).
    """
    in2, out2, fee2 = path_reserves[1]
    in3, out3, fee3 = path_reserves[2]
    first = path_reserves[:1]
    gamma2, scaled_in2 = FEE_DENOMINATOR - fee2, in2 * FEE_DENOMINATOR
    gamma3, scaled_in3 = FEE_DENOMINATOR - fee3, in3 * FEE_DENOMINATOR

    def waste_at(u: int) -> float:
        base = scaled_in2 + gamma2 * u
        return (gamma2 * out2 * u % base) / base

    def measure(u: int) -> tuple[int, int, int] | None:
        x = _least_input(u, first) if u > 0 else None  # no input buys nothing
        if x is None or (max_input is not None and x > max_input):
            return None
        out = _output(x, path_reserves)
        return x, out, out - x

    u = _output(start_in, first)
    # (1) only where the curve is within a share of the gap of the bound: a descent further
    # out buys a smaller waste with a larger loss on the curve
    z = gamma2 * out2 * u // (scaled_in2 + gamma2 * u)
    gap = MIDDLE_GAP * gamma3 * out3 * scaled_in3 / (scaled_in3 + gamma3 * z) ** 2
    low, high = _window(
        curve, first, max(start_profit, bound - int(gap * DESCENT_SHARE)), max_input
    )
    if not low <= u <= high:
        low, high = _window(curve, first, start_profit, max_input)
    for _ in range(DESCENTS):  # each from where the last landed, with the slope there
        base = scaled_in2 + gamma2 * u
        slope = (gamma2 * out2 * scaled_in2, base * base)
        landed_u = descend(u, low, high, gamma2 * out2, scaled_in2, gamma2, slope)
        if landed_u == u:
            break
        u = landed_u
    waste = waste_at(u)
    landed = measure(u)
    best = landed if landed is not None and landed[2] > start_profit else None
    profit = best[2] if best else start_profit

    z = gamma2 * out2 * u // (scaled_in2 + gamma2 * u)
    if (
        not exact
        and bound - profit
        < MIDDLE_GAP * gamma3 * out3 * scaled_in3 / (scaled_in3 + gamma3 * z) ** 2
    ):
        return best

    # (2) The last hop's slope is least at the largest middle output the window allows.
    low, high = _window(curve, first, profit, max_input)
    steps = convergent_steps(*slope, high - low, SEMI_KEEP)
    z_top = gamma2 * out2 * high // (scaled_in2 + gamma2 * high) + 1
    slope3 = gamma3 * out3 * scaled_in3 / (scaled_in3 + gamma3 * z_top) ** 2
    # A step's residual drifts with the slope, by at most span * (distance from u0 + span) * bend.
    bend = 2.0 * gamma2 * gamma2 * out2 * scaled_in2 / (scaled_in2 + gamma2 * low) ** 3
    limit = (bound - profit + 1) / slope3 * (1 + 1e-9)
    # Only a step that moves the waste by less than the band is wide can join two such u.
    reach = high - low
    near = [(q, e) for q, e in steps if abs(e) < limit + q * (reach + q) * bend + 1e-12]
    u0 = u
    frontier, seen = [(u, waste_at(u))], {u}
    while frontier and len(seen) < SAWTOOTH_MAX_VISITS:
        centre, centre_waste = frontier.pop()
        if centre_waste >= limit:
            continue  # the band narrowed since: no longer a candidate, nor a way to one
        for span, residual in near:
            slack = span * (abs(centre - u0) + span) * bend + 1e-12
            for u, expected in (
                (centre + span, centre_waste + residual),
                (centre - span, centre_waste - residual),
            ):
                if not -slack <= expected < limit + slack or u in seen or not low <= u <= high:
                    continue
                waste = waste_at(u)
                if waste >= limit:
                    continue
                seen.add(u)
                frontier.append((u, waste))
                found = measure(u)
                if found is not None and found[2] > profit:
                    best, profit = found, found[2]
                    limit = (bound - profit + 1) / slope3 * (1 + 1e-9)
    return best


def _window(
    curve: tuple[int, int, int], first: PathReserves, profit: int, max_input: int | None
) -> tuple[int, int]:
    """The first-hop outputs u whose least input could still earn more than `profit`, given
    the path's (A, B, C) (`compose`) and its first hop.

    The unrounded profit A*x/(B+C*x) - x exceeds `profit` only strictly between the roots of
    C*x^2 + (B + C*profit - A)*x + profit*B; outside them no input can beat it.
    """
    big_a, big_b, big_c = curve
    linear = big_b + big_c * profit - big_a
    disc = linear * linear - 4 * big_c * profit * big_b
    if disc <= 0:
        return 1, 0
    root = isqrt(disc)
    x_low = max(1, (-linear - root) // (2 * big_c))
    x_high = (-linear + root) // (2 * big_c) + 1
    if max_input is not None:
        x_high = min(x_high, max_input)
    return _output(x_low, first), _output(x_high, first) + 1


def size_cycle(
    cycle: Cycle,
    pools: Mapping[str, V2Pool],
    max_input: int | None = None,
    *,
    min_profit: int = 1,
) -> CycleTrade | None:
    """`size_trade` on a cycle with each pool's current state looked up by address."""
    return size_trade(cycle_reserves(cycle, pools), max_input, min_profit=min_profit)
