"""One hop's exact output near one input, cheaply: the building block of the coarse search
(coarse_search.py) and of path_model's exact anchors.

`LocalHop` prices a hop near one input by the last step of its swap alone (every step before
ends at a fixed tick, so its amounts are fixed): under a µs (last_step.LastStep), and the pool's
exact integer output. `local_path` builds one per hop of a path around its amounts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from math import gcd

from mev_common.amm.last_step import LastStep
from mev_common.amm.legs import (
    LEAST_INPUT_PROBES,
    Leg,
    V3Leg,
    last_step_state,
    leg_least_input,
    leg_out,
    leg_swap,
)
from mev_common.amm.pool_states import PoolStates
from mev_common.amm.v2 import FEE_DENOMINATOR as V2_FEE_DENOMINATOR
from mev_common.amm.v3 import SwapResult, V3Pool
from mev_common.amm.v3_math import FEE_DENOMINATOR as V3_FEE_DENOMINATOR
from mev_common.amm.v3_math import (
    V3MathError,
    compute_swap_step,
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_amount0_rounding_up,
    get_next_sqrt_price_from_amount1_rounding_down,
    get_sqrt_ratio_at_tick,
)

_StepConstants = tuple[int, LastStep, int, float, float, float]


def _step(pool: V3Pool, down: bool, sqrt_p: int, tick: int, liquidity: int) -> _StepConstants:
    """A V3 hop's step from (sqrt_p, tick, liquidity): its end's sqrt price, its LastStep, the
    fee floor's period, the range's virtual reserves (in, out) and fee factor, as floats."""
    target, _ = pool.next_initialized_tick_within_one_word(tick, down)
    limit = min(pool.ticks) if down else max(pool.ticks)
    target = max(target, limit) if down else min(target, limit)
    sqrt_target = get_sqrt_ratio_at_tick(target)
    step = LastStep(sqrt_p, sqrt_target, liquidity, pool.fee, down)
    period = V3_FEE_DENOMINATOR // gcd(V3_FEE_DENOMINATOR, V3_FEE_DENOMINATOR - pool.fee)
    g = (V3_FEE_DENOMINATOR - pool.fee) / V3_FEE_DENOMINATOR
    r_in = liquidity * 2**96 / sqrt_p if down else liquidity * sqrt_p / 2**96
    r_out = liquidity * sqrt_p / 2**96 if down else liquidity * 2**96 / sqrt_p
    return sqrt_target, step, period, r_in, r_out, g


# A pool's first step per direction, kept across the cycles of a search (as mixed_sizing's
# _FIRST_PIECES: a block's search sizes hundreds of cycles through one V3 pool, and the step's
# end and constants cost ~3 µs a hop), for the newest FIRST_STEPS_PER_POOL states of each pool
# (pool_states.py: kept by total size, dead states piled up to the cap)
FIRST_STEPS_PER_POOL = 2
_FIRST_STEPS: PoolStates[_StepConstants] = PoolStates(FIRST_STEPS_PER_POOL)
_STEPS = _FIRST_STEPS.entries


class LocalHop:
    """One hop's exact output (and least input) for amounts near `around`."""

    def __init__(
        self, leg: Leg, around: int, swapped: SwapResult | None = None, first_step: bool = False
    ) -> None:
        """`swapped`: the pool's swap of `around`, if the caller ran it (leg_swap);
        `first_step`: take the pool's first step as the last (local_path checks it is)."""
        self.leg = leg
        self.v3 = isinstance(leg, V3Leg)
        self._out: Callable[[int], int] | None = None  # out_fn's, once built
        self._least_in: Callable[[int], int | None] | None = None
        if not isinstance(leg, V3Leg):
            reserve_in, reserve_out, fee_bps = leg
            g = (V2_FEE_DENOMINATOR - fee_bps) / V2_FEE_DENOMINATOR
            self.rate = g * reserve_in * reserve_out / (reserve_in + g * around) ** 2
            self.period = 1
            return
        pool, down = leg.pool, leg.zero_for_one
        self.fee, self.down = pool.fee, down
        self.offset, before = (0, None) if first_step else last_step_state(leg, around, swapped)
        self.out_before, sqrt_p, tick, liquidity = 0, pool.sqrt_price_x96, pool.tick, pool.liquidity
        if before is not None:  # the pool's swap of exactly `offset`
            self.out_before = -(before.amount1 if down else before.amount0)
            sqrt_p, tick, liquidity = before.sqrt_price_x96, before.tick, before.liquidity
        self.sqrt_p, self.liquidity = sqrt_p, liquidity
        if first_step:  # the pool's own first step: the same in every cycle through it
            hit = _STEPS.get((id(pool), down))
            if hit is None or hit[0] is not pool:
                constants = _FIRST_STEPS.put(pool, down, _step(pool, down, sqrt_p, tick, liquidity))
            else:
                constants = hit[1]
        else:
            constants = _step(pool, down, sqrt_p, tick, liquidity)
        self.sqrt_target, self.step, self.period, r_in, r_out, g = constants
        spent = g * max(0, around - self.offset)
        self.rate = g * r_in * r_out / (r_in + spent) ** 2

    def offset_at(self, amount: int) -> int | None:
        """last_step_start(leg, amount) when a V3 swap of `amount` ends inside this hop's last
        step (then the steps before it are this hop's); None when unsure."""
        if not self.v3 or amount <= self.offset or self.step.out(amount - self.offset) is None:
            return None
        return self.offset

    def out(self, amount: int) -> int:
        """The hop's exact output for `amount` (leg_out's), by its last step when it can."""
        leg = self.leg
        if not isinstance(leg, V3Leg):
            reserve_in, reserve_out, fee_bps = leg
            with_fee = amount * (V2_FEE_DENOMINATOR - fee_bps)
            return with_fee * reserve_out // (reserve_in * V2_FEE_DENOMINATOR + with_fee)
        rest = amount - self.offset
        if rest <= 0:
            return leg_out(leg, amount)
        fast = self.step.out(rest)
        if fast is not None:
            return self.out_before + fast
        less_fee = rest * (V3_FEE_DENOMINATOR - self.fee) // V3_FEE_DENOMINATOR
        sqrt_p, liquidity = self.sqrt_p, self.liquidity
        try:
            if self.down:
                sqrt_next = get_next_sqrt_price_from_amount0_rounding_up(
                    sqrt_p, liquidity, less_fee, True
                )
                if sqrt_next <= self.sqrt_target:
                    return leg_out(leg, amount)
                return self.out_before + get_amount1_delta(sqrt_next, sqrt_p, liquidity, False)
            sqrt_next = get_next_sqrt_price_from_amount1_rounding_down(
                sqrt_p, liquidity, less_fee, True
            )
            if sqrt_next >= self.sqrt_target:
                return leg_out(leg, amount)
            return self.out_before + get_amount0_delta(sqrt_p, sqrt_next, liquidity, False)
        except V3MathError:
            return leg_out(leg, amount)

    def out_fn(self) -> Callable[[int], int]:
        """`out` as a closure over the hop's constants, for a search's many prices."""
        if self._out is None:
            self._out = self._make_out()
        return self._out

    def _make_out(self) -> Callable[[int], int]:
        if self.v3:
            return self.step.out_fn(self.offset, self.out_before, self.out)
        reserve_in, reserve_out, fee_bps = self.leg  # type: ignore[misc]
        gamma, scaled_in = V2_FEE_DENOMINATOR - fee_bps, reserve_in * V2_FEE_DENOMINATOR

        def v2_out(amount: int) -> int:
            with_fee = amount * gamma
            return with_fee * reserve_out // (scaled_in + with_fee)

        return v2_out

    def least_in_fn(self) -> Callable[[int], int | None]:
        """`least_in` as a closure over the hop's constants (see out_fn)."""
        if self._least_in is None:
            self._least_in = (
                self.step.least_in_fn(self.offset, self.out_before, self.least_in)
                if self.v3
                else partial(leg_least_input, self.leg)
            )
        return self._least_in

    def least_in(self, amount_out: int) -> int | None:
        """About the least input paying `amount_out` (the pool's exact-output swap in its last
        step; within a wei or two of leg_least_input, which the final measure uses)."""
        leg = self.leg
        if not isinstance(leg, V3Leg):
            return leg_least_input(leg, amount_out)
        rest = amount_out - self.out_before
        if rest <= 0:
            return leg_least_input(leg, amount_out)
        fast = self.step.least_in(rest)
        if fast is not None:
            return self.offset + fast
        sqrt_next, paid, _, fee = compute_swap_step(
            self.sqrt_p, self.sqrt_target, self.liquidity, -rest, self.fee
        )
        if sqrt_next == self.sqrt_target:
            return leg_least_input(leg, amount_out)
        return self.offset + paid + fee

    def least_input(self, amount_out: int) -> int | None:
        """leg_least_input's answer (the least input paying `amount_out`, exactly), its probes
        priced by the last step: from `least_in`, up while short, down while one wei less
        still pays; the full answer where the probes run out."""
        return self.least_input_out(amount_out)[0]

    def least_input_out(self, amount_out: int) -> tuple[int | None, int | None]:
        """least_input's answer and the hop's exact output for it where the probes priced it
        (None where not): a caller pricing the path from that input skips one hop's price."""
        if not self.v3 or amount_out <= 0:
            return leg_least_input(self.leg, amount_out), None
        paid = self.least_in_fn()(amount_out)
        if paid is None or paid <= 0:
            return leg_least_input(self.leg, amount_out), None
        out = self.out_fn()
        for _ in range(LEAST_INPUT_PROBES):
            got = out(paid)
            if got >= amount_out:
                break
            paid += 1
        else:
            return leg_least_input(self.leg, amount_out), None
        for _ in range(LEAST_INPUT_PROBES):
            if paid <= 1:
                return paid, got
            below = out(paid - 1)
            if below < amount_out:
                return paid, got
            paid, got = paid - 1, below
        return leg_least_input(self.leg, amount_out), None


def local_path(amount_in: int, legs: Sequence[Leg]) -> tuple[list[int], list[LocalHop]] | None:
    """path_amounts and a LocalHop per hop around its amount; None if a hop pays nothing.

    Why: most swaps near an optimum stay in the pool's first step (the continuous walk crosses
    a range on ~1 cycle in 10), and there the step's own integer math is the pool's output, so
    the full swap (a bitmap walk, then last_step_state's) runs only for the hops that leave it.
    """
    amounts, hops = [amount_in], []
    for leg in legs:
        amount, hop, out = amounts[-1], None, None
        if isinstance(leg, V3Leg) and leg.pool.ticks and amount > 0:
            hop = LocalHop(leg, amount, first_step=True)
            out = hop.step.out(amount)
        if hop is None or out is None:  # a V2 hop, or it leaves the first step: the whole swap
            out, swapped = leg_swap(leg, amount)
            hop = LocalHop(leg, amount, swapped)
        if out <= 0:
            return None
        amounts.append(out)
        hops.append(hop)
    return amounts, hops
