"""A V3 pool's last swap step (one range of constant liquidity) as a few integer operations.

Why: mixed sizing prices hundreds of candidate amounts near one optimum (coarse_search.py), all
ending in the same step of each V3 hop. The generic step (v3_math.compute_swap_step and the
SqrtPriceMath it calls) re-checks overflow and re-derives constants on every call; here the
constants of the step (L << 96, L * 2^96 * sqrtP, the amount that reaches the step's end) are
computed once and each price is the same floors and ceilings in the same order, so the results
are the pool's to the wei (tests/unit/amm/test_last_step.py compares them with compute_swap_step).
Outside the range where the shortcut provably equals the generic math (an overflow branch, the
step's end reached), `out`/`least_in` return None and the caller takes the generic path.
"""

from __future__ import annotations

from collections.abc import Callable

from mev_common.amm.v3_math import FEE_DENOMINATOR, MAX_UINT160, MAX_UINT256, Q96

__all__ = ["LastStep"]


class LastStep:
    """The step from `sqrt_p` toward `sqrt_target` with `liquidity`, for a pool fee in pips."""

    __slots__ = ("down", "fee", "g_num", "liquidity", "max_fast_in", "max_out", "n1", "n1s",
                 "sqrt_p", "sqrt_target")  # fmt: skip

    def __init__(self, sqrt_p: int, sqrt_target: int, liquidity: int, fee: int, down: bool) -> None:
        self.sqrt_p, self.sqrt_target, self.liquidity = sqrt_p, sqrt_target, liquidity
        self.fee, self.g_num, self.down = fee, FEE_DENOMINATOR - fee, down
        self.n1 = liquidity << 96
        self.n1s = self.n1 * sqrt_p
        # exact input: the largest input less fee whose product with the price neither wraps
        # nor wraps the denominator (getNextSqrtPriceFromAmount0RoundingUp's fast branch)
        self.max_fast_in = (MAX_UINT256 - self.n1) // sqrt_p if down else MAX_UINT160
        # exact output: what the step pays to its end (computeSwapStep's amountOut bound)
        if liquidity <= 0 or (sqrt_target >= sqrt_p if down else sqrt_target <= sqrt_p):
            self.max_out = 0  # no shortcut: the generic math decides
        elif down:
            self.max_out = liquidity * (sqrt_p - sqrt_target) >> 96
        else:
            self.max_out = self.n1 * (sqrt_target - sqrt_p) // sqrt_target // sqrt_p

    def out(self, amount: int) -> int | None:
        """The step's output for `amount` in (fee included), if it ends inside the step."""
        if self.liquidity <= 0 or amount < 0:
            return None
        less_fee = amount * self.g_num // FEE_DENOMINATOR
        if less_fee > self.max_fast_in:
            return None
        sqrt_p = self.sqrt_p
        if self.down:
            sqrt_next = -(-self.n1s // (self.n1 + less_fee * sqrt_p))
            if sqrt_next <= self.sqrt_target:
                return None
            return self.liquidity * (sqrt_p - sqrt_next) >> 96
        sqrt_next = sqrt_p + (less_fee << 96) // self.liquidity
        if sqrt_next >= self.sqrt_target:
            return None
        return self.n1 * (sqrt_next - sqrt_p) // sqrt_next // sqrt_p

    def least_in(self, amount_out: int) -> int | None:
        """The step's exact-output input (fee included) for `amount_out`, if it ends inside."""
        if not 0 < amount_out < self.max_out:
            return None
        sqrt_p = self.sqrt_p
        if self.down:
            sqrt_next = sqrt_p - -(-(amount_out << 96) // self.liquidity)
            if sqrt_next == self.sqrt_target:
                return None
            scaled = -(-self.n1 * (sqrt_p - sqrt_next) // sqrt_p)  # ceil, as mulDivRoundingUp
            paid = -(-scaled // sqrt_next)
        else:
            sqrt_next = -(-self.n1s // (self.n1 - amount_out * sqrt_p))
            if sqrt_next == self.sqrt_target or sqrt_next > MAX_UINT160:
                return None
            paid = -(-self.liquidity * (sqrt_next - sqrt_p) // Q96)
        return paid + -(-paid * self.fee // self.g_num)

    def out_fn(
        self, offset: int, out_before: int, fallback: Callable[[int], int]
    ) -> Callable[[int], int]:
        """`out_before + out(amount - offset)` as a closure over the step's constants (a search
        prices ~100 amounts on one step: no attribute look-ups), `fallback(amount)` where `out`
        would answer None."""
        g_num, max_fast_in, sqrt_target = self.g_num, self.max_fast_in, self.sqrt_target
        sqrt_p, liquidity, n1, n1s = self.sqrt_p, self.liquidity, self.n1, self.n1s
        if liquidity <= 0:
            return fallback

        def down(amount: int) -> int:
            rest = amount - offset
            if rest > 0:
                less_fee = rest * g_num // FEE_DENOMINATOR
                if less_fee <= max_fast_in:
                    sqrt_next = -(-n1s // (n1 + less_fee * sqrt_p))
                    if sqrt_next > sqrt_target:
                        return out_before + (liquidity * (sqrt_p - sqrt_next) >> 96)
            return fallback(amount)

        def up(amount: int) -> int:
            rest = amount - offset
            if rest > 0:
                less_fee = rest * g_num // FEE_DENOMINATOR
                if less_fee <= max_fast_in:
                    sqrt_next = sqrt_p + (less_fee << 96) // liquidity
                    if sqrt_next < sqrt_target:
                        return out_before + n1 * (sqrt_next - sqrt_p) // sqrt_next // sqrt_p
            return fallback(amount)

        return down if self.down else up

    def least_in_fn(
        self, offset: int, out_before: int, fallback: Callable[[int], int | None]
    ) -> Callable[[int], int | None]:
        """`offset + least_in(amount_out - out_before)` as a closure (see out_fn),
        `fallback(amount_out)` where `least_in` would answer None."""
        fee, g_num, max_out, sqrt_target = self.fee, self.g_num, self.max_out, self.sqrt_target
        sqrt_p, liquidity, n1, n1s = self.sqrt_p, self.liquidity, self.n1, self.n1s

        def down(amount_out: int) -> int | None:
            rest = amount_out - out_before
            if 0 < rest < max_out:
                sqrt_next = sqrt_p - -(-(rest << 96) // liquidity)
                if sqrt_next != sqrt_target:
                    scaled = -(-n1 * (sqrt_p - sqrt_next) // sqrt_p)  # ceil, as mulDivRoundingUp
                    paid = -(-scaled // sqrt_next)
                    return offset + paid + -(-paid * fee // g_num)
            return fallback(amount_out)

        def up(amount_out: int) -> int | None:
            rest = amount_out - out_before
            if 0 < rest < max_out:
                sqrt_next = -(-n1s // (n1 - rest * sqrt_p))
                if sqrt_next != sqrt_target and sqrt_next <= MAX_UINT160:
                    paid = -(-liquidity * (sqrt_next - sqrt_p) // Q96)
                    return offset + paid + -(-paid * fee // g_num)
            return fallback(amount_out)

        return down if self.down else up
