"""V3 math on known values from the Solidity libraries and their own test suites (v3-core)."""

from __future__ import annotations

import math
import random

import pytest
from mev_common.amm import v3_math as m
from mev_common.amm.v3 import V3Pool, bitmap_of

PRICE_1_1 = 1 << 96  # encodePriceSqrt(1, 1)
PRICE_121_100 = 87150978765690771352898345369  # encodePriceSqrt(121, 100) = 1.1 * 2^96
PRICE_101_100 = 79623317895830914510639640423  # encodePriceSqrt(101, 100)


def test_tick_math_bounds_and_zero() -> None:
    assert m.get_sqrt_ratio_at_tick(m.MIN_TICK) == m.MIN_SQRT_RATIO
    assert m.get_sqrt_ratio_at_tick(m.MAX_TICK) == m.MAX_SQRT_RATIO
    assert m.get_sqrt_ratio_at_tick(0) == 79228162514264337593543950336
    assert m.get_sqrt_ratio_at_tick(m.MIN_TICK + 1) == 4295343490
    assert m.get_sqrt_ratio_at_tick(m.MAX_TICK - 1) == (
        1461373636630004318706518188784493106690254656249
    )
    assert m.get_tick_at_sqrt_ratio(m.MIN_SQRT_RATIO) == m.MIN_TICK
    assert m.get_tick_at_sqrt_ratio(m.MAX_SQRT_RATIO - 1) == m.MAX_TICK - 1
    assert m.get_tick_at_sqrt_ratio(1 << 96) == 0
    for bad in (m.MIN_TICK - 1, m.MAX_TICK + 1):
        with pytest.raises(m.V3MathError):
            m.get_sqrt_ratio_at_tick(bad)
    for bad in (m.MIN_SQRT_RATIO - 1, m.MAX_SQRT_RATIO):
        with pytest.raises(m.V3MathError):
            m.get_tick_at_sqrt_ratio(bad)


def test_tick_at_sqrt_ratio_is_the_greatest_tick_not_above_the_price() -> None:
    rng = random.Random(7)
    for _ in range(300):
        tick = rng.randint(m.MIN_TICK, m.MAX_TICK - 1)
        low, high = m.get_sqrt_ratio_at_tick(tick), m.get_sqrt_ratio_at_tick(tick + 1)
        assert m.get_tick_at_sqrt_ratio(low) == tick
        assert m.get_tick_at_sqrt_ratio(high - 1) == tick
        assert m.get_tick_at_sqrt_ratio(rng.randrange(low, high)) == tick


def test_sqrt_ratio_tracks_the_float_formula() -> None:
    for tick in (-50_000, -1, 1, 50, 100_000):
        expected = math.sqrt(1.0001**tick) * 2**96
        assert abs(m.get_sqrt_ratio_at_tick(tick) / expected - 1) < 1e-12


def test_amount_deltas_match_the_v3_core_suite() -> None:
    # SqrtPriceMath.spec.ts: "returns 0.1 amount1 for price of 1 to 1.21"
    assert m.get_amount0_delta(PRICE_1_1, PRICE_121_100, 10**18, True) == 90909090909090910
    assert m.get_amount0_delta(PRICE_1_1, PRICE_121_100, 10**18, False) == 90909090909090909
    assert m.get_amount1_delta(PRICE_1_1, PRICE_121_100, 10**18, True) == 100000000000000000
    assert m.get_amount1_delta(PRICE_1_1, PRICE_121_100, 10**18, False) == 99999999999999999
    assert m.get_amount0_delta(PRICE_1_1, PRICE_1_1, 10**18, True) == 0


def test_next_sqrt_price_matches_the_v3_core_suite() -> None:
    assert m.get_next_sqrt_price_from_input(PRICE_1_1, 10**18, 10**17, False) == PRICE_121_100
    assert (
        m.get_next_sqrt_price_from_input(PRICE_1_1, 10**18, 10**17, True)
        == 72025602285694852357767227579
    )
    assert m.get_next_sqrt_price_from_input(PRICE_1_1, 10**17, 0, True) == PRICE_1_1
    with pytest.raises(m.V3MathError):
        m.get_next_sqrt_price_from_input(PRICE_1_1, 0, 10**17, True)
    # output of exactly the virtual reserves reverts
    with pytest.raises(m.V3MathError):
        m.get_next_sqrt_price_from_output(20282409603651670423947251286016, 1024, 262144, False)


def test_swap_step_capped_at_target_matches_the_v3_core_suite() -> None:
    # SwapMath.spec.ts: "exact amount in that gets capped at price target in one for zero"
    sqrt_q, amount_in, amount_out, fee = m.compute_swap_step(
        PRICE_1_1, PRICE_101_100, 2 * 10**18, 10**18, 600
    )
    assert (amount_in, fee, amount_out) == (9975124224178055, 5988667735148, 9925619580021728)
    assert sqrt_q == PRICE_101_100
    # "exact amount in that is fully spent in one for zero": the whole input is used
    sqrt_q, amount_in, amount_out, fee = m.compute_swap_step(
        PRICE_1_1, 250541448375047931186413801569, 2 * 10**18, 10**18, 600
    )
    assert (amount_in, fee, amount_out) == (999400000000000000, 600000000000000, 666399946655997866)
    assert amount_in + fee == 10**18


def test_full_math() -> None:
    assert m.mul_div(m.Q128, 35 * m.Q128, 8 * m.Q128) == 4375 * m.Q128 // 1000
    assert m.mul_div_rounding_up(m.Q128, 1000 * m.Q128, 3000 * m.Q128) == m.Q128 // 3 + 1
    with pytest.raises(m.V3MathError):
        m.mul_div(m.Q128, m.Q128, 0)
    with pytest.raises(m.V3MathError):
        m.mul_div(m.MAX_UINT256, m.MAX_UINT256, 1)
    with pytest.raises(m.V3MathError):
        m.add_delta(1, -2)


def _pool(liquidity_ranges: list[tuple[int, int, int]], tick: int, spacing: int = 60) -> V3Pool:
    pool = V3Pool("0xpool", "0xt0", "0xt1", 3000, spacing, m.get_sqrt_ratio_at_tick(tick), tick, 0)
    for lower, upper, amount in liquidity_ranges:
        pool = pool.modify_position(lower, upper, amount)
    return pool


def test_modify_position_keeps_ticks_bitmap_and_liquidity() -> None:
    pool = _pool([(-600, 600, 10**18), (-120, 1200, 5 * 10**17)], tick=0)
    assert pool.liquidity == 15 * 10**17
    assert pool.ticks == {
        -600: (10**18, 10**18), 600: (10**18, -(10**18)),
        -120: (5 * 10**17, 5 * 10**17), 1200: (5 * 10**17, -5 * 10**17),
    }  # fmt: skip
    assert pool.bitmap == bitmap_of(pool.ticks, 60)
    burnt = pool.modify_position(-120, 1200, -5 * 10**17)
    assert burnt.ticks == {-600: (10**18, 10**18), 600: (10**18, -(10**18))}
    assert burnt.bitmap == bitmap_of(burnt.ticks, 60) and burnt.liquidity == 10**18
    assert pool.liquidity == 15 * 10**17  # the original is untouched


def test_next_initialized_tick_within_one_word() -> None:
    pool = _pool([(-200 * 60, 300 * 60, 1)], tick=0)
    # lte from 0: nothing initialized in [word start, 0] -> the word's first tick
    assert pool.next_initialized_tick_within_one_word(0, True) == (0, False)
    assert pool.next_initialized_tick_within_one_word(-60, True) == (-200 * 60, True)
    assert pool.next_initialized_tick_within_one_word(0, False) == (255 * 60, False)
    assert pool.next_initialized_tick_within_one_word(256 * 60, False) == (300 * 60, True)
    # a negative tick not on the spacing rounds down (compressed toward -infinity): -61 is in
    # compressed -2, whose word starts at -256; -200 is initialized below it in that word
    assert pool.next_initialized_tick_within_one_word(-61, True) == (-200 * 60, True)
    assert pool.next_initialized_tick_within_one_word(-201 * 60 - 1, True) == (-256 * 60, False)


def test_swap_both_ways_crosses_ticks_and_exhausts() -> None:
    pool = _pool([(-600, 600, 10**18), (-6000, 6000, 10**17)], tick=0)
    res = pool.swap(True, 5 * 10**16)
    assert res.amount0 == 5 * 10**16 and res.amount1 < 0
    assert res.ticks_crossed == 1 and res.liquidity == 10**17
    back = pool.swap(True, res.amount1)  # exact output of what exact input gave
    assert back.amount1 == res.amount1 and back.amount0 <= res.amount0
    everything = pool.swap(False, 10**40)
    assert everything.sqrt_price_x96 == m.MAX_SQRT_RATIO - 1 and everything.liquidity == 0
    assert everything.ticks_crossed == 2 and everything.amount1 < 10**40
    with pytest.raises(m.V3MathError):
        pool.swap(True, 1, pool.sqrt_price_x96)


def test_tick_at_sqrt_ratio_equals_the_library_log2() -> None:
    """The fast tick (float estimate, exact comparisons) equals the library's log2 path on
    random prices across the whole range, at and one off every kind of tick boundary."""
    import random

    from mev_common.amm.v3_math import (
        MAX_SQRT_RATIO,
        MAX_TICK,
        MIN_SQRT_RATIO,
        MIN_TICK,
        get_sqrt_ratio_at_tick,
        get_tick_at_sqrt_ratio,
        tick_at_sqrt_ratio_log2,
    )

    rng = random.Random(13)
    prices = [MIN_SQRT_RATIO, MIN_SQRT_RATIO + 1, MAX_SQRT_RATIO - 1]
    for _ in range(5_000):
        at = get_sqrt_ratio_at_tick(rng.randrange(MIN_TICK, MAX_TICK + 1))
        prices += [at - 1, at, at + 1, int(2 ** rng.uniform(32.1, 159.9))]
    prices = [p for p in prices if MIN_SQRT_RATIO <= p < MAX_SQRT_RATIO]
    assert len(prices) > 19_000
    assert [get_tick_at_sqrt_ratio(p) for p in prices] == [
        tick_at_sqrt_ratio_log2(p) for p in prices
    ]
