"""LastStep (one V3 swap step as a few integer operations) against the generic step,
v3_math.compute_swap_step, to the wei: every amount it answers must be the generic answer, and
it must decline (None) rather than guess where the step would reach its end."""

from __future__ import annotations

import random

import pytest
from mev_common.amm.last_step import LastStep
from mev_common.amm.v3_math import compute_swap_step, get_sqrt_ratio_at_tick

FEES = (100, 500, 3000, 10000)


def generic_out(sqrt_p: int, target: int, liquidity: int, fee: int, amount: int) -> int | None:
    sqrt_next, _, out, _ = compute_swap_step(sqrt_p, target, liquidity, amount, fee)
    return None if sqrt_next == target else out


def generic_in(sqrt_p: int, target: int, liquidity: int, fee: int, amount: int) -> int | None:
    sqrt_next, paid, _, fee_paid = compute_swap_step(sqrt_p, target, liquidity, -amount, fee)
    return None if sqrt_next == target else paid + fee_paid


def steps(seed: int) -> list[tuple[int, int, int, int, bool]]:
    """Steps across prices from 1e-12 to 1e12 (6- vs 18-decimal pairs), both directions."""
    rng = random.Random(seed)
    found = []
    for _ in range(40):
        tick = rng.randrange(-300_000, 300_000)
        width = rng.choice((1, 10, 60, 200, 4_000))
        down = rng.random() < 0.5
        sqrt_p = get_sqrt_ratio_at_tick(tick) + rng.randrange(0, 10**6)
        target = get_sqrt_ratio_at_tick(tick - width if down else tick + width)
        liquidity = rng.choice((1, 10**6, 10**12, 10**18, 10**24, 2**127))
        found.append((sqrt_p, target, liquidity, rng.choice(FEES), down))
    return found


@pytest.mark.parametrize("seed", range(6))
def test_equal_to_compute_swap_step(seed: int) -> None:
    rng = random.Random(seed)
    answered = declined = 0
    for sqrt_p, target, liquidity, fee, down in steps(seed):
        step = LastStep(sqrt_p, target, liquidity, fee, down)
        for _ in range(60):
            amount = rng.randrange(0, 10 ** rng.randrange(1, 40))
            fast = step.out(amount)
            generic = generic_out(sqrt_p, target, liquidity, fee, amount)
            if fast is None:
                declined += 1
            else:
                answered += 1
                assert fast == generic, (sqrt_p, target, liquidity, fee, amount)
            if amount <= 0:
                continue
            fast = step.least_in(amount)
            if fast is not None:
                answered += 1
                assert fast == generic_in(sqrt_p, target, liquidity, fee, amount)
    # both branches ran: the shortcut answers most amounts inside a step, declines the rest
    assert answered > 1_000 and declined > 100


def test_declines_at_the_step_end() -> None:
    """An input that reaches the step's end (the pool would cross the tick) gets None."""
    sqrt_p, target = get_sqrt_ratio_at_tick(100), get_sqrt_ratio_at_tick(40)
    step = LastStep(sqrt_p, target, 10**18, 3000, True)
    _, to_end, paid_out, fee = compute_swap_step(sqrt_p, target, 10**18, 10**30, 3000)
    assert step.out(to_end + fee) is None
    just_short = to_end + fee - 10
    assert step.out(just_short) == generic_out(sqrt_p, target, 10**18, 3000, just_short)
    assert step.least_in(paid_out) is None
