"""Integer Uniswap V2 swap math and a brute-force optimal input for one cycle.

Why written again here and not imported: the oracle must not share a bug with the bot. The
formula is the pair's own (and the executor's): floor(in*(10000-fee)*rOut / (rIn*10000 +
in*(10000-fee))), so every amount is exact to the wei.
"""

from __future__ import annotations

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


def best_input(legs: tuple[Leg, ...]) -> tuple[int, int]:
    """(amount_in, gross profit) maximising the exact integer profit; (0, 0) if none gains.

    Ternary search over integers on [0, last pool's output reserve] (no input beyond it can
    come back larger), then every input of the final window. Every profit it compares is exact;
    the search can only be misled where the floors' noise (under one unit of each intermediate
    token, carried to WETH: < 1e-9 ETH on the devnet's 6-decimal pools) hides the slope, so
    the result is at most that far below the true integer optimum. Slow and simple, which
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
    best_in, best_profit = 0, 0
    for amount in range(lo, hi + 1):
        profit = cycle_profit(amount, legs)
        if profit > best_profit:
            best_in, best_profit = amount, profit
    return best_in, best_profit
