"""A Uniswap V3 pool in memory: its state, its swap and its liquidity changes, wei-exact.

The state is what a swap reads (slot0's sqrtPriceX96 and tick, the in-range liquidity, the tick
bitmap and each initialized tick's liquidityNet) plus liquidityGross, which says when a mint or
burn flips a tick. Values are treated as immutable: `swap` returns a result and `after_swap` /
`modify_position` return a new pool (tick maps copied only when they change), so a journal can
keep the previous object to undo a block. The swap walks the bitmap one word at a time exactly as
the pool does (`nextInitializedTickWithinOneWord`): the word boundaries are steps too, and each
step rounds, so skipping them would be off by a few wei.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mev_common.amm.v3_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    V3MathError,
    add_delta,
    compute_swap_step,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)

TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}  # the factory's enabled fee amounts


@dataclass(frozen=True)
class SwapResult:
    amount0: int  # pool's view: positive = paid in, negative = paid out
    amount1: int
    sqrt_price_x96: int  # after
    tick: int
    liquidity: int
    ticks_crossed: int  # initialized ticks crossed


@dataclass(frozen=True)
class V3Pool:
    address: str
    token0: str
    token1: str
    fee: int  # pips (500 = 0.05 %)
    tick_spacing: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    # tick -> (liquidityGross, liquidityNet), initialized ticks only
    ticks: dict[int, tuple[int, int]] = field(default_factory=dict)
    # word position -> 256-bit word of compressed ticks, as TickBitmap stores it (no zero words)
    bitmap: dict[int, int] = field(default_factory=dict)

    # ---- TickBitmap ----

    def next_initialized_tick_within_one_word(self, tick: int, lte: bool) -> tuple[int, bool]:
        spacing = self.tick_spacing
        compressed = tick // spacing  # Solidity truncates, then steps down for negatives
        if lte:
            word_pos, bit_pos = compressed >> 8, compressed & 0xFF
            masked = self.bitmap.get(word_pos, 0) & ((1 << bit_pos) - 1 + (1 << bit_pos))
            if masked:
                msb = masked.bit_length() - 1
                return (compressed - (bit_pos - msb)) * spacing, True
            return (compressed - bit_pos) * spacing, False
        word_pos, bit_pos = (compressed + 1) >> 8, (compressed + 1) & 0xFF
        masked = self.bitmap.get(word_pos, 0) & ~((1 << bit_pos) - 1)
        if masked:
            lsb = (masked & -masked).bit_length() - 1
            return (compressed + 1 + (lsb - bit_pos)) * spacing, True
        return (compressed + 1 + (255 - bit_pos)) * spacing, False

    # ---- swap ----

    def swap(
        self, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int | None = None
    ) -> SwapResult:
        """UniswapV3Pool.swap without transfers: > 0 exact input, < 0 exact output.

        `sqrt_price_limit_x96` None means as far as the pool allows (MIN+1 / MAX-1), which is
        what exhausts the liquidity when the amount is large enough.
        """
        if amount_specified == 0:
            raise V3MathError("AS")
        limit = sqrt_price_limit_x96
        if limit is None:
            limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
        # (the protocol's fee cut changes fee growth only, never amounts or prices)
        if not (
            MIN_SQRT_RATIO < limit < self.sqrt_price_x96
            if zero_for_one
            else self.sqrt_price_x96 < limit < MAX_SQRT_RATIO
        ):
            raise V3MathError("SPL")
        exact_input = amount_specified > 0
        remaining, calculated = amount_specified, 0
        sqrt_price, tick, liquidity = self.sqrt_price_x96, self.tick, self.liquidity
        crossed = 0
        while remaining != 0 and sqrt_price != limit:
            start = sqrt_price
            tick_next, initialized = self.next_initialized_tick_within_one_word(tick, zero_for_one)
            tick_next = max(MIN_TICK, min(MAX_TICK, tick_next))
            sqrt_next = get_sqrt_ratio_at_tick(tick_next)
            beyond = sqrt_next < limit if zero_for_one else sqrt_next > limit
            sqrt_price, amount_in, amount_out, fee_amount = compute_swap_step(
                sqrt_price, limit if beyond else sqrt_next, liquidity, remaining, self.fee
            )
            if exact_input:
                remaining -= amount_in + fee_amount
                calculated -= amount_out
            else:
                remaining += amount_out
                calculated += amount_in + fee_amount
            if sqrt_price == sqrt_next:
                if initialized:
                    net = self.ticks[tick_next][1]
                    liquidity = add_delta(liquidity, -net if zero_for_one else net)
                    crossed += 1
                tick = tick_next - 1 if zero_for_one else tick_next
            elif sqrt_price != start:
                tick = get_tick_at_sqrt_ratio(sqrt_price)
        if zero_for_one == exact_input:
            amount0, amount1 = amount_specified - remaining, calculated
        else:
            amount0, amount1 = calculated, amount_specified - remaining
        return SwapResult(amount0, amount1, sqrt_price, tick, liquidity, crossed)

    def after_swap(self, sqrt_price_x96: int, tick: int, liquidity: int) -> V3Pool:
        """The pool after a swap (from a SwapResult or a `Swap` log: both carry these three)."""
        return replace(self, sqrt_price_x96=sqrt_price_x96, tick=tick, liquidity=liquidity)

    # ---- mint / burn ----

    def modify_position(self, tick_lower: int, tick_upper: int, liquidity_delta: int) -> V3Pool:
        """The pool after a `Mint` (delta > 0) or `Burn` (delta < 0) of `liquidity_delta`."""
        if liquidity_delta == 0:
            return self
        if not (MIN_TICK <= tick_lower < tick_upper <= MAX_TICK):
            raise V3MathError(f"bad range {tick_lower}..{tick_upper}")
        ticks, bitmap = dict(self.ticks), dict(self.bitmap)
        for tick, net_sign in ((tick_lower, 1), (tick_upper, -1)):
            gross, net = ticks.get(tick, (0, 0))
            gross_after = add_delta(gross, liquidity_delta)
            if (gross_after == 0) != (gross == 0):
                compressed = tick // self.tick_spacing
                word = bitmap.get(compressed >> 8, 0) ^ (1 << (compressed & 0xFF))
                if word:
                    bitmap[compressed >> 8] = word
                else:
                    bitmap.pop(compressed >> 8, None)
            if gross_after == 0:
                ticks.pop(tick, None)  # Tick.clear: a burn to zero forgets the tick
            else:
                ticks[tick] = (gross_after, net + net_sign * liquidity_delta)
        liquidity = self.liquidity
        if tick_lower <= self.tick < tick_upper:
            liquidity = add_delta(liquidity, liquidity_delta)
        return replace(self, ticks=ticks, bitmap=bitmap, liquidity=liquidity)


def bitmap_of(ticks: dict[int, tuple[int, int]], tick_spacing: int) -> dict[int, int]:
    """The TickBitmap words for a set of initialized ticks."""
    words: dict[int, int] = {}
    for tick in ticks:
        compressed = tick // tick_spacing
        words[compressed >> 8] = words.get(compressed >> 8, 0) | (1 << (compressed & 0xFF))
    return words
