"""rotation.py: the convergent moves of a rotation and the greedy descent of a hop's waste."""

from __future__ import annotations

import random
from fractions import Fraction

from mev_common.amm.rotation import convergent_denominators, convergent_steps, descend

FEE = 9970  # a V2 hop's 1e4 - fee_bps


def _waste(u: int, rate: int, scaled_in: int) -> Fraction:
    """The part of one output unit a V2 hop floors away at input u, exactly."""
    return Fraction(rate * u % (scaled_in + FEE * u), scaled_in + FEE * u)


def test_convergent_steps_are_the_moves_with_the_residuals_they_list() -> None:
    numerator, denominator = 355, 113 * 7  # s = 355/791
    steps = convergent_steps(numerator, denominator, 10_000)
    spans = [q for q, _ in steps]
    assert spans == sorted(spans) and spans[0] == 1
    for q, residual in steps:
        exact = q * Fraction(numerator, denominator)
        assert abs(residual - float(exact - round(exact))) < 1e-9


def test_convergent_denominators_are_the_steps_spans() -> None:
    """The coarse search's jumps come from convergent_denominators: the same q, in the same
    order, as convergent_steps lists (its residuals left out), on slopes like the search's
    (2**52 scale) and any other, with and without semiconvergents."""
    rng = random.Random(11)
    for _ in range(3_000):
        denominator = rng.choice((1 << 52, 10 ** rng.randint(1, 18), rng.randint(1, 10**12)))
        numerator = rng.randint(0, 3 * denominator)
        limit, keep = rng.randint(1, 10 ** rng.randint(1, 7)), rng.randint(0, 3)
        want = [q for q, _ in convergent_steps(numerator, denominator, limit, keep)]
        assert convergent_denominators(numerator, denominator, limit, keep) == want


def _case(rng: random.Random) -> tuple[int, int, int, int, int]:
    reserve_in = rng.randint(10**11, 10**13)
    reserve_out = reserve_in * rng.randint(900, 1100) // 1000
    u0 = rng.randint(10**8, 10**10)
    half = rng.randint(100, 2_000)
    return reserve_in * 10_000, FEE * reserve_out, u0, u0 - half, u0 + half


def test_descent_stays_in_its_window_and_never_raises_the_exact_waste() -> None:
    rng = random.Random(5)
    near_least = 0
    for _ in range(300):
        scaled_in, rate, u0, low, high = _case(rng)
        base = scaled_in + FEE * u0
        u = descend(u0, low, high, rate, scaled_in, FEE, (rate * scaled_in, base * base))
        assert low <= u <= high
        assert _waste(u, rate, scaled_in) <= _waste(u0, rate, scaled_in)
        least = min(rate * v % (scaled_in + FEE * v) / (scaled_in + FEE * v)
                    for v in range(low, high + 1))  # fmt: skip
        landed = float(_waste(u, rate, scaled_in))
        near_least += landed <= max(4 * least, 4 / (high - low))
    # one pass per slope, no backtracking: near the least waste of the window on most cases
    # (286 of these 300; the others are left to the caller's bound check)
    assert near_least >= 270, near_least
