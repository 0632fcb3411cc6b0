"""Uniswap V3 core math in pure integer Python, step for step as @uniswap/v3-core 1.0.1.

Why a transcription and not a formula: the pool rounds at every step (each tick range, each
bitmap word), so only the same operations in the same order give the pool's result to the wei.
Every function keeps the Solidity name (snake_case) and its `require`s raise V3MathError, the
Python face of the revert, so a case the pool refuses is refused here too.
"""

from __future__ import annotations

from functools import lru_cache
from math import floor, log

MIN_TICK = -887272
MAX_TICK = 887272
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342
Q96 = 1 << 96
Q128 = 1 << 128
MAX_UINT256 = (1 << 256) - 1
MAX_UINT160 = (1 << 160) - 1
MAX_UINT128 = (1 << 128) - 1
FEE_DENOMINATOR = 1_000_000
_LOG_1_0001 = log(1.0001)

# TickMath.getSqrtRatioAtTick: bit of |tick| -> 128.128 factor (1/sqrt(1.0001)^(2^i)).
_TICK_FACTORS = (
    (0x2, 0xFFF97272373D413259A46990580E213A),
    (0x4, 0xFFF2E50F5F656932EF12357CF3C7FDCC),
    (0x8, 0xFFE5CACA7E10E4E61C3624EAA0941CD0),
    (0x10, 0xFFCB9843D60F6159C9DB58835C926644),
    (0x20, 0xFF973B41FA98C081472E6896DFB254C0),
    (0x40, 0xFF2EA16466C96A3843EC78B326B52861),
    (0x80, 0xFE5DEE046A99A2A811C461F1969C3053),
    (0x100, 0xFCBE86C7900A88AEDCFFC83B479AA3A4),
    (0x200, 0xF987A7253AC413176F2B074CF7815E54),
    (0x400, 0xF3392B0822B70005940C7A398E4B70F3),
    (0x800, 0xE7159475A2C29B7443B29C7FA6E889D9),
    (0x1000, 0xD097F3BDFD2022B8845AD8F792AA5825),
    (0x2000, 0xA9F746462D870FDF8A65DC1F90E061E5),
    (0x4000, 0x70D869A156D2A1B890BB3DF62BAF32F7),
    (0x8000, 0x31BE135F97D08FD981231505542FCFA6),
    (0x10000, 0x9AA508B5B7A84E1C677DE54F3E99BC9),
    (0x20000, 0x5D6AF8DEDB81196699C329225EE604),
    (0x40000, 0x2216E584F5FA1EA926041BEDFE98),
    (0x80000, 0x48A170391F7DC42444E8FA2),
)


class V3MathError(ArithmeticError):
    """A `require` of the Solidity library failed: the pool would revert."""


# ---- FullMath, UnsafeMath, LiquidityMath -------------------------------------------------


def mul_div(a: int, b: int, denominator: int) -> int:
    """floor(a*b/denominator); reverts on a zero denominator or a result above uint256."""
    if denominator == 0:
        raise V3MathError("mulDiv: zero denominator")
    result = a * b // denominator
    if result > MAX_UINT256:
        raise V3MathError("mulDiv: overflow")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    result = mul_div(a, b, denominator)
    if a * b % denominator:
        if result >= MAX_UINT256:
            raise V3MathError("mulDivRoundingUp: overflow")
        result += 1
    return result


def div_rounding_up(x: int, y: int) -> int:
    """UnsafeMath.divRoundingUp (y > 0 is the caller's promise)."""
    return x // y + (1 if x % y else 0)


def add_delta(x: int, y: int) -> int:
    """LiquidityMath.addDelta: uint128 plus int128, reverting on under/overflow ('LS'/'LA')."""
    z = x + y
    if z < 0:
        raise V3MathError("LS")
    if z > MAX_UINT128:
        raise V3MathError("LA")
    return z


# ---- TickMath -----------------------------------------------------------------------------


@lru_cache(maxsize=65_536)  # pure; swaps and sizing ask for the same few ticks again and again
def get_sqrt_ratio_at_tick(tick: int) -> int:
    """sqrt(1.0001^tick) as Q64.96, rounded up as the library rounds it."""
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise V3MathError("T")
    ratio = 0xFFFCB933BD6FAD37AA2D162D1A594001 if abs_tick & 0x1 else 1 << 128
    for bit, factor in _TICK_FACTORS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = MAX_UINT256 // ratio
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """The greatest tick whose sqrt ratio is <= `sqrt_price_x96`, which is what the library's
    log2 computes (`tick_at_sqrt_ratio_log2`, its transcription): a float estimate of the tick,
    then exact comparisons with getSqrtRatioAtTick, ~4x faster than the log2 in Python."""
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise V3MathError("R")
    estimate = floor(2 * log(sqrt_price_x96 / Q96) / _LOG_1_0001)
    tick = max(MIN_TICK, min(MAX_TICK, estimate))
    while tick > MIN_TICK and get_sqrt_ratio_at_tick(tick) > sqrt_price_x96:
        tick -= 1
    while tick < MAX_TICK and get_sqrt_ratio_at_tick(tick + 1) <= sqrt_price_x96:
        tick += 1
    return tick


def tick_at_sqrt_ratio_log2(sqrt_price_x96: int) -> int:
    """TickMath.getTickAtSqrtRatio step for step (the library's log2 path)."""
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise V3MathError("R")
    ratio = sqrt_price_x96 << 32
    msb = ratio.bit_length() - 1
    r = ratio >> (msb - 127) if msb >= 128 else ratio << (127 - msb)
    log_2 = (msb - 128) << 64
    for shift in range(63, 49, -1):
        r = (r * r) >> 127
        f = r >> 128
        log_2 |= f << shift
        r >>= f
    log_sqrt10001 = log_2 * 255738958999603826347141
    tick_low = (log_sqrt10001 - 3402992956809132418596140100660247210) >> 128
    tick_high = (log_sqrt10001 + 291339464771989622907027621153398088495) >> 128
    if tick_low == tick_high:
        return tick_low
    return tick_high if get_sqrt_ratio_at_tick(tick_high) <= sqrt_price_x96 else tick_low


# ---- SqrtPriceMath ------------------------------------------------------------------------


def _to_uint160(x: int) -> int:
    if x > MAX_UINT160:
        raise V3MathError("toUint160: overflow")
    return x


def get_next_sqrt_price_from_amount0_rounding_up(
    sqrt_px96: int, liquidity: int, amount: int, add: bool
) -> int:
    if amount == 0:
        return sqrt_px96
    numerator1 = liquidity << 96
    product = (amount * sqrt_px96) & MAX_UINT256  # the EVM's wrapping multiply
    fits = product // amount == sqrt_px96
    if add:
        if fits:
            denominator = (numerator1 + product) & MAX_UINT256
            if denominator >= numerator1:
                return mul_div_rounding_up(numerator1, sqrt_px96, denominator)
        total = numerator1 // sqrt_px96 + amount
        if total > MAX_UINT256:
            raise V3MathError("add: overflow")
        return div_rounding_up(numerator1, total)
    if not (fits and numerator1 > product):
        raise V3MathError("getNextSqrtPriceFromAmount0RoundingUp: output beyond liquidity")
    return _to_uint160(mul_div_rounding_up(numerator1, sqrt_px96, numerator1 - product))


def get_next_sqrt_price_from_amount1_rounding_down(
    sqrt_px96: int, liquidity: int, amount: int, add: bool
) -> int:
    if add:
        quotient = (
            (amount << 96) // liquidity
            if amount <= MAX_UINT160
            else mul_div(amount, Q96, liquidity)
        )
        return _to_uint160(sqrt_px96 + quotient)
    quotient = (
        div_rounding_up(amount << 96, liquidity)
        if amount <= MAX_UINT160
        else mul_div_rounding_up(amount, Q96, liquidity)
    )
    if sqrt_px96 <= quotient:
        raise V3MathError("getNextSqrtPriceFromAmount1RoundingDown: output beyond liquidity")
    return sqrt_px96 - quotient


def get_next_sqrt_price_from_input(
    sqrt_px96: int, liquidity: int, amount_in: int, zero_for_one: bool
) -> int:
    if sqrt_px96 <= 0 or liquidity <= 0:
        raise V3MathError("getNextSqrtPriceFromInput: no price or no liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_in, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_px96, liquidity, amount_in, True)


def get_next_sqrt_price_from_output(
    sqrt_px96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    if sqrt_px96 <= 0 or liquidity <= 0:
        raise V3MathError("getNextSqrtPriceFromOutput: no price or no liquidity")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(
            sqrt_px96, liquidity, amount_out, False
        )
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_px96, liquidity, amount_out, False)


def get_amount0_delta(sqrt_a: int, sqrt_b: int, liquidity: int, round_up: bool) -> int:
    """Token0 between two prices for `liquidity` (unsigned, rounded as asked)."""
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    if sqrt_a <= 0:
        raise V3MathError("getAmount0Delta: zero price")
    numerator1 = liquidity << 96
    numerator2 = sqrt_b - sqrt_a
    if round_up:
        return div_rounding_up(mul_div_rounding_up(numerator1, numerator2, sqrt_b), sqrt_a)
    return mul_div(numerator1, numerator2, sqrt_b) // sqrt_a


def get_amount1_delta(sqrt_a: int, sqrt_b: int, liquidity: int, round_up: bool) -> int:
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    if round_up:
        return mul_div_rounding_up(liquidity, sqrt_b - sqrt_a, Q96)
    return mul_div(liquidity, sqrt_b - sqrt_a, Q96)


def get_amount0_delta_signed(sqrt_a: int, sqrt_b: int, liquidity: int) -> int:
    """Signed form (mint/burn amounts): positive liquidity rounds up, negative rounds down."""
    if liquidity < 0:
        return -get_amount0_delta(sqrt_a, sqrt_b, -liquidity, False)
    return get_amount0_delta(sqrt_a, sqrt_b, liquidity, True)


def get_amount1_delta_signed(sqrt_a: int, sqrt_b: int, liquidity: int) -> int:
    if liquidity < 0:
        return -get_amount1_delta(sqrt_a, sqrt_b, -liquidity, False)
    return get_amount1_delta(sqrt_a, sqrt_b, liquidity, True)


# ---- SwapMath -----------------------------------------------------------------------------


def compute_swap_step(
    sqrt_current: int, sqrt_target: int, liquidity: int, amount_remaining: int, fee_pips: int
) -> tuple[int, int, int, int]:
    """One step within a tick range: (sqrt price after, amount in, amount out, fee amount).

    `amount_remaining` > 0 is exact input (fee included), < 0 exact output.
    """
    zero_for_one = sqrt_current >= sqrt_target
    exact_in = amount_remaining >= 0
    amount_in = amount_out = 0
    if exact_in:
        remaining_less_fee = mul_div(amount_remaining, FEE_DENOMINATOR - fee_pips, FEE_DENOMINATOR)
        amount_in = (
            get_amount0_delta(sqrt_target, sqrt_current, liquidity, True)
            if zero_for_one
            else get_amount1_delta(sqrt_current, sqrt_target, liquidity, True)
        )
        if remaining_less_fee >= amount_in:
            sqrt_next = sqrt_target
        else:
            sqrt_next = get_next_sqrt_price_from_input(
                sqrt_current, liquidity, remaining_less_fee, zero_for_one
            )
    else:
        amount_out = (
            get_amount1_delta(sqrt_target, sqrt_current, liquidity, False)
            if zero_for_one
            else get_amount0_delta(sqrt_current, sqrt_target, liquidity, False)
        )
        if -amount_remaining >= amount_out:
            sqrt_next = sqrt_target
        else:
            sqrt_next = get_next_sqrt_price_from_output(
                sqrt_current, liquidity, -amount_remaining, zero_for_one
            )
    reached = sqrt_target == sqrt_next
    if zero_for_one:
        if not (reached and exact_in):
            amount_in = get_amount0_delta(sqrt_next, sqrt_current, liquidity, True)
        if not (reached and not exact_in):
            amount_out = get_amount1_delta(sqrt_next, sqrt_current, liquidity, False)
    else:
        if not (reached and exact_in):
            amount_in = get_amount1_delta(sqrt_current, sqrt_next, liquidity, True)
        if not (reached and not exact_in):
            amount_out = get_amount0_delta(sqrt_current, sqrt_next, liquidity, False)
    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining
    if exact_in and sqrt_next != sqrt_target:
        fee_amount = amount_remaining - amount_in
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, FEE_DENOMINATOR - fee_pips)
    return sqrt_next, amount_in, amount_out, fee_amount
