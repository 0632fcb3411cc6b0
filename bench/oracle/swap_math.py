"""Integer Uniswap V2 swap math and a brute-force optimal input for one cycle.

Why written again here and not imported: the oracle must not share a bug with the bot. The
formula is the pair's own (and the executor's): floor(in*(10000-fee)*rOut / (rIn*10000 +
in*(10000-fee))), so every amount is exact to the wei.
"""

from __future__ import annotations

from collections.abc import Callable
from math import isqrt
from typing import NamedTuple

FEE_DENOMINATOR = 10_000
SCAN_WINDOW = 1024  # the integer search ends with an exhaustive scan of this many inputs


class Leg(NamedTuple):
    """One hop's pool as the trade sees it: reserves oriented in -> out, fee in bps."""

    reserve_in: int
    reserve_out: int
    fee_bps: int


def amount_out(amount_in: int, leg: Leg) -> int:
    if amount_in <= 0 or leg.reserve_in <= 0 or leg.reserve_out <= 0:
        return 0
    scaled_in = amount_in * (FEE_DENOMINATOR - leg.fee_bps)
    return scaled_in * leg.reserve_out // (leg.reserve_in * FEE_DENOMINATOR + scaled_in)


def cycle_profit(amount_in: int, legs: tuple[Leg, ...]) -> int:
    """What comes back minus what went in (negative when the cycle loses)."""
    amount = amount_in
    for leg in legs:
        amount = amount_out(amount, leg)
    return amount - amount_in


def opens_profitably(legs: tuple[Leg, ...]) -> bool:
    """Whether the first wei-sized trade gains: the product of marginal prices after fees
    exceeds 1 (integer cross-multiplication, no floats). A concave cycle that loses at its
    first unit loses at every size, so the search can skip it."""
    gain, cost = 1, 1
    for leg in legs:
        gain *= leg.reserve_out * (FEE_DENOMINATOR - leg.fee_bps)
        cost *= leg.reserve_in * FEE_DENOMINATOR
    return gain > cost


def composed(legs: tuple[Leg, ...]) -> tuple[int, int, int]:
    """(N, D, M) with the cycle's output, without floors, equal to N*x / (D + M*x).

    One leg is g*b*x / (10000*a + g*x) with g = 10000 - fee; feeding N*x/(D+M*x) into it gives
    g*b*N*x / (10000*a*D + (10000*a*M + g*N)*x): a chain of pools is one virtual pool.
    """
    n, d, m = 1, 1, 0
    for leg in legs:
        g = FEE_DENOMINATOR - leg.fee_bps
        n, d, m = (
            g * leg.reserve_out * n,
            FEE_DENOMINATOR * leg.reserve_in * d,
            (FEE_DENOMINATOR * leg.reserve_in * m + g * n),
        )
    return n, d, m


def continuous_optimum(legs: tuple[Leg, ...]) -> tuple[int, int]:
    """(input, profit bound): the real-valued optimum x* = (sqrt(N*D) - D) / M, floored, and
    ceil((sqrt(N) - sqrt(D))^2 / M), which no integer trade can beat (every floor only takes
    away); (0, 0) when the cycle opens at a loss."""
    n, d, m = composed(legs)
    if not legs or n <= d or m == 0:
        return 0, 0
    root = isqrt(n * d)
    x_star = max(0, (root - d) // m)
    # (sqrt N - sqrt D)^2 = N + D - 2*sqrt(N*D) <= N + D - 2*isqrt(N*D): an upper bound
    return x_star, -(-(n + d - 2 * root) // m)


def amount_in_for(amount: int, leg: Leg) -> int | None:
    """The smallest input whose output is at least `amount` (the pair's formula inverted:
    x*g*(rOut - out) >= out*rIn*10000); None when the pool cannot pay that much."""
    if amount <= 0:
        return 0
    if amount >= leg.reserve_out:
        return None
    g = FEE_DENOMINATOR - leg.fee_bps
    return -(-amount * leg.reserve_in * FEE_DENOMINATOR // (g * (leg.reserve_out - amount)))


def cheapest_input(last_in: int, legs: tuple[Leg, ...]) -> int | None:
    """The smallest cycle input that brings at least `last_in` to the last leg."""
    amount: int | None = last_in
    for leg in reversed(legs[:-1]):
        amount = amount_in_for(amount, leg) if amount is not None else None
    return amount


def _ternary(lo: int, hi: int, value: Callable[[int], int]) -> int:
    """Where a (noisily) unimodal `value` peaks on [lo, hi], to within SCAN_WINDOW."""
    while hi - lo > SCAN_WINDOW:
        third = (hi - lo) // 3
        left, right = lo + third, hi - third
        if value(left) < value(right):
            lo = left
        else:
            hi = right
    return lo


def best_input(legs: tuple[Leg, ...]) -> tuple[int, int]:
    """(amount_in, gross profit) maximising the exact integer profit; (0, 0) if none gains.

    Two searches, the better kept, ties to the smaller input. In input space: ternary search
    over [0, last pool's output reserve] (no larger input can come back larger), then every
    input of the final window and of one around the real-valued optimum. In the space of the
    last leg's input v: each v costs `cheapest_input(v)` and returns the last leg's output,
    so the floors of every leg but the first collapse into exact inverses; for two legs the
    remaining noise is 2 wei, and scanning the window around the peak gives the exact
    optimum. Every compared profit is an exact `cycle_profit`, never above
    `continuous_optimum`'s bound. Slow and simple, which suits an oracle; unprofitable
    cycles return at once.
    """
    if not legs or not opens_profitably(legs):
        return 0, 0
    candidates: list[int] = []
    lo = _ternary(0, legs[-1].reserve_out, lambda x: cycle_profit(x, legs))
    x_star, _ = continuous_optimum(legs)
    candidates += range(lo, lo + SCAN_WINDOW + 1)
    candidates += range(max(0, x_star - SCAN_WINDOW // 2), x_star + SCAN_WINDOW // 2 + 1)
    if len(legs) >= 2:

        def by_last_input(v: int) -> int:
            x = cheapest_input(v, legs)
            return -(10**80) if x is None else amount_out(v, legs[-1]) - x

        top = legs[-2].reserve_out - 1
        v_lo = _ternary(1, top, by_last_input)
        v_star = _forward(x_star, legs[:-1])
        near_star = range(max(1, v_star - SCAN_WINDOW // 2), v_star + SCAN_WINDOW // 2 + 1)
        for v in (*range(v_lo, v_lo + SCAN_WINDOW + 1), *near_star):
            x = cheapest_input(v, legs)
            if x is not None:
                candidates.append(x)
    best_in, best_profit = 0, 0
    for amount in candidates:
        profit = cycle_profit(amount, legs)
        if profit > best_profit or (profit == best_profit > 0 and amount < best_in):
            best_in, best_profit = amount, profit
    return best_in, best_profit


def _forward(amount_in: int, legs: tuple[Leg, ...]) -> int:
    amount = amount_in
    for leg in legs:
        amount = amount_out(amount, leg)
    return amount
