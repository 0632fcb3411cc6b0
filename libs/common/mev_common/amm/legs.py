"""One hop of a cycle (a V2 pair or a V3 pool in a direction) on exact integers, and paths of
them: the pool's own output for an input, and the least input for an output.

Why a module: sizing (mixed_sizing.py), detect's search and the bench all price hops the same
way. A V3 hop that cannot take a whole input (its liquidity ends first) pays 0: the executor's
exact-input swap would not balance, so such a trade is no trade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from mev_common.amm.cycles import Cycle
from mev_common.amm.v2 import FEE_DENOMINATOR as V2_FEE_DENOMINATOR
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import SwapResult, V3Pool
from mev_common.amm.v3_math import (
    MAX_TICK,
    MIN_TICK,
    V3MathError,
    get_sqrt_ratio_at_tick,
)

LEAST_INPUT_PROBES = 4  # one-wei steps a V3 hop's exact-output input is checked against


class V3Leg(NamedTuple):
    """A hop through a V3 pool: the pool's state and the direction (token0 in if zero_for_one)."""

    pool: V3Pool
    zero_for_one: bool


# A V2 hop is (reserve_in, reserve_out, fee_bps), as sizing.PathReserves.
Leg = V3Leg | tuple[int, int, int]


def _swap(leg: V3Leg, amount: int) -> SwapResult | None:
    """The pool's swap, its price limit at the last initialized tick on the way: beyond it the
    pool has no liquidity (every position ends there), so the amounts are the same as with no
    limit, without walking the empty bitmap words to the end of the tick range."""
    pool = leg.pool
    if not pool.ticks:
        return None
    limit = get_sqrt_ratio_at_tick(min(pool.ticks) if leg.zero_for_one else max(pool.ticks))
    if (limit >= pool.sqrt_price_x96) if leg.zero_for_one else (limit <= pool.sqrt_price_x96):
        return None
    try:
        return pool.swap(leg.zero_for_one, amount, limit)
    except V3MathError:
        return None


def leg_out(leg: Leg, amount: int) -> int:
    """Exact output of one hop for `amount` in; 0 if the hop cannot take it whole."""
    if amount <= 0:
        return 0
    if isinstance(leg, V3Leg):
        return _v3_out(leg, amount, _swap(leg, amount))
    reserve_in, reserve_out, fee_bps = leg
    if reserve_in <= 0 or reserve_out <= 0:
        return 0
    with_fee = amount * (V2_FEE_DENOMINATOR - fee_bps)
    return with_fee * reserve_out // (reserve_in * V2_FEE_DENOMINATOR + with_fee)


def leg_least_input(leg: Leg, amount_out: int) -> int | None:
    """Least input whose exact output is >= `amount_out`; None if the hop cannot pay it."""
    if amount_out <= 0:
        return 0
    if not isinstance(leg, V3Leg):
        reserve_in, reserve_out, fee_bps = leg
        if amount_out >= reserve_out:
            return None
        numerator = amount_out * reserve_in * V2_FEE_DENOMINATOR
        return -(-numerator // ((V2_FEE_DENOMINATOR - fee_bps) * (reserve_out - amount_out)))
    result = _swap(leg, -amount_out)
    if result is None:
        return None
    paid_in, got = (
        (result.amount0, -result.amount1) if leg.zero_for_one else (result.amount1, -result.amount0)
    )
    if got < amount_out:
        return None  # the pool runs out of liquidity first
    # The exact-output swap rounds its input up per step, the exact-input swap its fee up: the
    # two can differ by a wei or so; probe so the answer is the least input, as the pool says.
    for _ in range(LEAST_INPUT_PROBES):
        if leg_out(leg, paid_in) >= amount_out:
            break
        paid_in += 1
    else:
        return None
    for _ in range(LEAST_INPUT_PROBES):
        if paid_in <= 1 or leg_out(leg, paid_in - 1) < amount_out:
            break
        paid_in -= 1
    return paid_in


def _v3_out(leg: V3Leg, amount: int, result: SwapResult | None) -> int:
    if result is None:
        return 0
    if leg.zero_for_one:
        return -result.amount1 if result.amount0 == amount else 0
    return -result.amount0 if result.amount1 == amount else 0


def leg_swap(leg: Leg, amount: int) -> tuple[int, SwapResult | None]:
    """leg_out's answer and, for a V3 hop, the pool's swap behind it (None for a V2 hop)."""
    if isinstance(leg, V3Leg) and amount > 0:
        result = _swap(leg, amount)
        return _v3_out(leg, amount, result), result
    return leg_out(leg, amount), None


def path_amounts(amount_in: int, legs: Sequence[Leg]) -> list[int]:
    """[input, output of each hop]; stops with 0 where a hop pays nothing."""
    amounts = [amount_in]
    for leg in legs:
        amounts.append(leg_out(leg, amounts[-1]))
        if amounts[-1] <= 0:
            break
    return amounts


def path_least_input(amount_out: int, legs: Sequence[Leg]) -> int | None:
    """Least path input whose exact output is >= `amount_out` (each hop inverted from the end:
    every hop is monotone, so the least input of each is what the one before must deliver)."""
    amount = amount_out
    for leg in reversed(legs):
        least = leg_least_input(leg, amount)
        if least is None:
            return None
        amount = least
    return amount


def last_step_start(leg: V3Leg, amount: int) -> int:
    """The input a V3 pool takes before the last step of an exact-input swap of `amount`: the
    steps before it each end at an initialized tick or a bitmap word boundary, so their inputs
    do not depend on `amount` (0 if the swap has one step)."""
    return last_step_state(leg, amount)[0]


def last_step_state(
    leg: V3Leg, amount: int, swapped: SwapResult | None = None
) -> tuple[int, SwapResult | None]:
    """last_step_start's input and the pool's swap of exactly that input (None if 0: the
    steps before the last end at fixed prices, so a swap of that input stops where the last
    step starts). `swapped`: the swap of `amount` if the caller ran it."""
    pool, down = leg.pool, leg.zero_for_one
    result = swapped if swapped is not None else _swap(leg, amount)
    if result is None:
        return 0, None
    final, tick, boundary = result.sqrt_price_x96, pool.tick, None
    while True:
        target, _ = pool.next_initialized_tick_within_one_word(tick, down)
        target = max(MIN_TICK, min(MAX_TICK, target))
        sqrt_target = get_sqrt_ratio_at_tick(target)
        if (sqrt_target <= final) if down else (sqrt_target >= final):
            break  # the swap ends within this step
        boundary, tick = sqrt_target, target - 1 if down else target
    if boundary is None:
        return 0, None
    used = pool.swap(down, amount, boundary)
    offset = used.amount0 if down else used.amount1
    return offset, used if offset > 0 else None


def cycle_legs(cycle: Cycle, pools: Mapping[str, V2Pool | V3Pool]) -> list[Leg]:
    """Each hop of a cycle as a Leg, from the pools' current states."""
    legs: list[Leg] = []
    for hop in cycle.hops:
        pool = pools[hop.pool]
        if isinstance(pool, V3Pool):
            legs.append(V3Leg(pool, hop.token_in == pool.token0))
        else:
            reserve_in, reserve_out = pool.reserves(hop.token_in)
            legs.append((reserve_in, reserve_out, pool.fee_bps))
    return legs
