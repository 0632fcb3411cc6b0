"""Sizing of cycles mixing V2 and V3 hops, against a complete brute force over the exact integer
math (V3Pool.swap, itself equal to the pool on anvil in tests/integration/test_v3_math_vs_pool.py,
and the V2 getAmountOut written out here), never against the code under test."""

from __future__ import annotations

import random

import pytest
from mev_common.amm.mixed_sizing import (
    V3Leg,
    continuous_optimum,
    leg_least_input,
    leg_out,
    size_mixed,
)
from mev_common.amm.v3 import TICK_SPACING, V3Pool
from mev_common.amm.v3_math import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio

T0, T1 = "0x" + "aa" * 20, "0x" + "bb" * 20


def v2_out(amount: int, reserve_in: int, reserve_out: int, fee_bps: int) -> int:
    if amount <= 0:
        return 0
    with_fee = amount * (10_000 - fee_bps)
    return with_fee * reserve_out // (reserve_in * 10_000 + with_fee)


def v3_out(pool: V3Pool, zero_for_one: bool, amount: int) -> int:
    """The pool's exact-input swap; 0 unless it takes the whole input."""
    if amount <= 0:
        return 0
    result = pool.swap(zero_for_one, amount)
    paid, got = (
        (result.amount0, -result.amount1) if zero_for_one else (result.amount1, -result.amount0)
    )
    return got if paid == amount else 0


def make_pool(rng: random.Random, fee: int, ranges: list[tuple[int, int, int]]) -> V3Pool:
    spacing = TICK_SPACING[fee]
    tick = rng.randrange(-40, 40) * spacing
    sqrt_price = get_sqrt_ratio_at_tick(tick) + rng.randrange(1, 10**22)
    pool = V3Pool("0x" + "11" * 20, T0, T1, fee, spacing, sqrt_price,
                  get_tick_at_sqrt_ratio(sqrt_price), 0)  # fmt: skip
    base = tick // spacing
    for low, high, liquidity in ranges:
        pool = pool.modify_position((base + low) * spacing, (base + high) * spacing, liquidity)
    return pool


def case(seed: int) -> tuple[V3Pool, bool, tuple[int, int, int]]:
    """A V3 pool with narrow overlapping ranges (so the optimum crosses ticks) and a V2 pair
    priced 2-6 % away, in a direction chosen by the seed."""
    rng = random.Random(seed)
    fee = rng.choice((500, 3000, 10000))
    ranges = [(-1, 1, 2 * 10**5), (-3, -1, 10**5), (1, 2, 10**5), (-6, 5, 5 * 10**4)]
    pool = make_pool(rng, fee, ranges)
    zero_for_one = seed % 2 == 0
    price = (pool.sqrt_price_x96 / 2**96) ** 2
    depth = int(pool.liquidity / (pool.sqrt_price_x96 / 2**96)) * 2
    off = rng.uniform(1.03, 1.08)
    if zero_for_one:  # token0 -> V3 -> token1 -> V2 -> token0
        pair = (int(depth * price / off), depth, 30)
    else:  # token0 -> V2 -> token1 -> V3 -> token0
        pair = (depth, int(depth * price * off), 30)
    return pool, zero_for_one, pair


def profit_of(x: int, pool: V3Pool, zero_for_one: bool, pair: tuple[int, int, int]) -> int:
    if zero_for_one:
        return v2_out(v3_out(pool, True, x), *pair) - x
    middle = v2_out(x, *pair)
    return (v3_out(pool, False, middle) if middle > 0 else 0) - x


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_mixed_cycle_against_brute_force(seed: int) -> None:
    pool, zero_for_one, pair = case(seed)
    legs = [V3Leg(pool, True), pair] if zero_for_one else [pair, V3Leg(pool, False)]
    x_c, bound = continuous_optimum(legs)
    assert x_c > 0
    # complete: the unrounded profit is concave and its optimum is x_c, so every profitable
    # input lies below a few times x_c (its zero)
    best_profit, _ = max((profit_of(x, pool, zero_for_one, pair), x) for x in range(1, 4 * x_c))
    assert best_profit > 0
    trade = size_mixed(legs)
    assert trade is not None
    # the trade's numbers are the exact math's at its input
    assert trade.profit == profit_of(trade.amount_in, pool, zero_for_one, pair)
    # the continuous optimum bounds every exact profit; ours is within one wei per hop of the
    # exact optimum (the walk does not search the last wei of rounding luck)
    assert bound + 2 >= best_profit
    assert best_profit - len(legs) <= trade.profit <= best_profit
    # the optimum crosses at least one initialized tick: sizing followed the ranges
    moved = pool.swap(zero_for_one, trade.amount_in if zero_for_one else trade.amounts_out[0])
    assert moved.ticks_crossed >= 1


def test_no_profit_gives_none() -> None:
    pool, _, _ = case(2)
    price = (pool.sqrt_price_x96 / 2**96) ** 2
    depth = int(pool.liquidity / (pool.sqrt_price_x96 / 2**96))
    fair = (int(depth * price), depth, 30)  # same price as the pool: fees eat any trade
    assert size_mixed([V3Leg(pool, True), fair]) is None
    assert continuous_optimum([V3Leg(pool, True), fair]) == (0, 0)


def test_least_input_is_least() -> None:
    pool, _, _ = case(3)
    checked = 0
    for zero_for_one in (True, False):
        leg = V3Leg(pool, zero_for_one)
        for amount_in in (5, 20, 40, 80, 150):
            amount_out = v3_out(pool, zero_for_one, amount_in)
            if amount_out == 0:
                continue  # below one unit out, or beyond the pool's liquidity
            x = leg_least_input(leg, amount_out)
            assert x is not None
            assert v3_out(pool, zero_for_one, x) >= amount_out
            assert v3_out(pool, zero_for_one, x - 1) < amount_out
            assert leg_out(leg, x) == v3_out(pool, zero_for_one, x)
            checked += 1
    assert checked >= 5


def test_input_beyond_liquidity_is_not_a_trade() -> None:
    pool, _, _ = case(4)
    leg = V3Leg(pool, True)
    assert leg_out(leg, 10**30) == 0  # the pool would stop at its last tick: a partial fill
    assert leg_least_input(leg, 10**30) is None


def test_max_input_caps_the_trade() -> None:
    pool, zero_for_one, pair = case(1)
    legs = [pair, V3Leg(pool, False)]
    assert not zero_for_one
    x_c, _ = continuous_optimum(legs)
    trade = size_mixed(legs, max_input=x_c // 3)
    assert trade is not None and trade.amount_in <= x_c // 3
    assert trade.profit == profit_of(trade.amount_in, pool, False, pair)
