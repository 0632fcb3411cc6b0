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
cap just below the optimum where the curve is flat and the walk too long) `sawtooth.sawtooth_search`
runs as before: it jumps to the nearby first middle amounts where that hop wastes least
(steps from the continued fraction of its slope, rotation.py) and stops within 1/1000 of a
middle unit of the bound by default; with gap_ppm=0 it then tries every first middle amount
that could still beat the best. Only dust profits (below ~1e4 units) can walk
far; `max_steps` caps that walk, and a realistic `min_profit` skips such cycles before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import isqrt
from typing import NamedTuple

from mev_common.amm.cycles import Cycle, cycle_reserves
from mev_common.amm.middle_hits import capped_middle, exact_middle
from mev_common.amm.sawtooth import (
    PathReserves,
    coarse_middle,
    least_input,
    path_output,
    sawtooth_search,
)
from mev_common.amm.v2 import FEE_DENOMINATOR, V2Pool, get_amounts_out

DEFAULT_MAX_STEPS = 256
DEFAULT_GAP_PPM = 100


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
    coarse = middle_search and len(path_reserves) == 3 and coarse_middle(path_reserves)
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
    up and down from it (after `sawtooth.sawtooth_search` where the middle search gave up)."""
    big_a, big_b, big_c = curve
    product = big_a * big_b
    # Each walk stops where x is past the optimum, (B + C*x)**2 >= A*B, and the unrounded
    # profit there (an upper bound of the real one) is at most the best: A*x <= (best + x) *
    # (B + C*x). Inlined (no closures: most cycles stop at once, a closure costs more).
    # within gap_ppm of the bound: (bound - profit) * 1e6 <= profit * gap_ppm
    enough = max(1, -(-bound * 1_000_000 // (1_000_000 + gap_ppm)))
    best_out = path_output(start, path_reserves)
    best_in = (least_input(best_out, path_reserves) or start) if best_out > 0 else start
    best_profit = best_out - best_in
    first_tight = best_in
    if coarse and best_out > 0:  # middle_hits gave up: the walk and descent of before
        jump = sawtooth_search(
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
        x_next = least_input(out_tight + 1, path_reserves)
        if x_next is None or (max_input is not None and x_next > max_input):
            break
        den = big_b + big_c * x_next
        if den * den >= product and big_a * x_next <= (best_profit + x_next) * den:
            break
        x_tight, out_tight = x_next, path_output(x_next, path_reserves)
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
        out_tight = path_output(x_below, path_reserves)
        if out_tight <= 0:
            break
        x_tight = least_input(out_tight, path_reserves) or x_below
        if out_tight - x_tight > best_profit:
            best_in, best_out, best_profit = x_tight, out_tight, out_tight - x_tight

    if best_profit < floor_min:
        return None
    amounts = get_amounts_out(best_in, path_reserves)
    return CycleTrade(best_in, tuple(amounts[1:]), amounts[-1] - best_in)


def size_cycle(
    cycle: Cycle,
    pools: Mapping[str, V2Pool],
    max_input: int | None = None,
    *,
    min_profit: int = 1,
) -> CycleTrade | None:
    """`size_trade` on a cycle with each pool's current state looked up by address."""
    return size_trade(cycle_reserves(cycle, pools), max_input, min_profit=min_profit)
