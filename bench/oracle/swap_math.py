"""Integer Uniswap V2 swap math and a brute-force optimal input for one cycle.

Why written again here and not imported: the oracle must not share a bug with the bot. The
formula is the pair's own (and the executor's): floor(in*(10000-fee)*rOut / (rIn*10000 +
in*(10000-fee))), so every amount is exact to the wei.
"""

from __future__ import annotations

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


def best_input(legs: tuple[Leg, ...]) -> tuple[int, int]:
    """(amount_in, gross profit) maximising the exact integer profit; (0, 0) if none gains.

    Ternary search over integers on [0, last pool's output reserve] (no input beyond it can
    come back larger), then every input of the final window and of a window around the
    real-valued optimum (`continuous_optimum`); ties go to the smaller input. Every profit it
    compares is exact; the search can only be misled where the floors' noise (under one unit
    of each intermediate token, carried to WETH: < 1e-9 ETH on the devnet's 6-decimal pools)
    hides the slope, so the result is at most that far below the true integer optimum, and
    never above `continuous_optimum`'s bound. Slow and simple, which
    suits an oracle; unprofitable cycles return at once.
    """
    if not legs or not opens_profitably(legs):
        return 0, 0
    lo, hi = 0, legs[-1].reserve_out
    while hi - lo > SCAN_WINDOW:
        third = (hi - lo) // 3
        left, right = lo + third, hi - third
        if cycle_profit(left, legs) < cycle_profit(right, legs):
            lo = left
        else:
            hi = right
    x_star, _ = continuous_optimum(legs)
    best_in, best_profit = 0, 0
    window = range(max(0, x_star - SCAN_WINDOW // 2), x_star + SCAN_WINDOW // 2 + 1)
    for amount in (*range(lo, hi + 1), *window):
        profit = cycle_profit(amount, legs)
        if profit > best_profit or (profit == best_profit > 0 and amount < best_in):
            best_in, best_profit = amount, profit
    return best_in, best_profit
