"""Rotations u -> frac(s*u + c): the moves that bring one back near 0, on exact integers.

Why a module: a pool's output floors, and along its input u the part it floors away is nearly a
rotation by the fractional part of its rate; the inputs where a coarse (6-decimal) hop wastes
least are where that rotation is near 0. By the three-gap theorem the only moves that bring a
rotation closer to 0 are the (semi)convergent denominators q of its slope, each moving it by its
residual q*s - p. V2 sizing (sizing.py) and mixed V2/V3 sizing (coarse_search.py) both search so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def _quotients(
    remainder: int, limit: int, semi_keep: int
) -> Iterator[tuple[int, int, int, Sequence[int]]]:
    """Euclid on remainder / 2**62: per partial quotient `term`, the convergent denominators
    q_prev and q before it and the multipliers j kept (q_prev + j*q are its semiconvergents,
    j = term the next convergent); stops once a convergent's q passes `limit`."""
    q_prev, q = 0, 1
    top, bottom = 1 << 62, remainder
    while bottom:
        term = top // bottom
        multipliers: Sequence[int] = range(1, term + 1)
        if term > 2 * semi_keep:
            multipliers = [*range(1, semi_keep + 1), *range(term - semi_keep + 1, term), term]
        yield q_prev, q, term, multipliers
        q_prev, q = q, term * q + q_prev
        top, bottom = bottom, top - term * bottom
        if q > limit:
            break


def _scaled(numerator: int, denominator: int) -> int:
    """s mod 1 in 2**-62 units: 62 bits of the slope are plenty (a step's residual is off by
    q * 2**-62) and keep the Euclid on machine-sized integers."""
    return (numerator % denominator << 62) // denominator


def convergent_steps(
    numerator: int, denominator: int, limit: int, semi_keep: int = 0
) -> list[tuple[int, float]]:
    """(q, q*s - p) for the convergents and semiconvergents p/q of s = numerator/denominator
    mod 1 with q <= limit, by q ascending.

    Moving q units along a line of slope s moves its fractional part by the (small, signed)
    residual; the gaps between the points where a fractional part is small are such q (the
    three-gap theorem), so these are the only moves the search needs. A long partial quotient
    keeps its first and last `semi_keep` semiconvergents (the last ones have the least
    residual); with 0, the convergents alone (all the greedy descent uses).
    """
    remainder, scale = _scaled(numerator, denominator), 1 << 62
    steps = [(1, remainder / scale)]
    p_prev, p = 1, 0
    e_prev, e = -1.0, remainder / scale  # residuals of p_prev/q_prev and p/q
    for q_prev, q, term, multipliers in _quotients(remainder, limit, semi_keep):
        for j in multipliers:
            if q_prev + j * q > limit:
                break
            steps.append((q_prev + j * q, e_prev + j * e))  # residuals add like the q's
        p_prev, p = p, term * p + p_prev
        # The new convergent's residual exactly (the float sum above cancels to noise).
        e_prev, e = e, ((term * q + q_prev) * remainder - p * scale) / scale
    return steps


def convergent_denominators(
    numerator: int, denominator: int, limit: int, semi_keep: int = 0
) -> list[int]:
    """convergent_steps' q alone, by q ascending: a search that only jumps (coarse_search.py)
    needs no residuals, and their big-integer products were most of convergent_steps' cost."""
    steps = [1]
    for q_prev, q, _, multipliers in _quotients(_scaled(numerator, denominator), limit, semi_keep):
        for j in multipliers:
            if q_prev + j * q > limit:
                break
            steps.append(q_prev + j * q)
    return steps


def descend(
    u: int, low: int, high: int, rate: int, scaled_in: int, gamma: int, slope: tuple[int, int]
) -> int:
    """A first middle amount in [low, high] near `u` where the middle hop's floor wastes
    little: the greedy Ostrowski descent of its waste frac(rate*u / (scaled_in + gamma*u)).

    Along u the waste is a rotation by the fractional part of `slope` (the hop's rate at u,
    as numerator and denominator); the convergents p/q of that fraction are the only moves
    that bring a rotation closer to 0 (three-gap theorem), with residuals q*slope - p of
    alternating sign and falling size. One pass from the shortest: take each move, in the
    direction that lowers the waste, as many times as its residual fits in it. Integers in
    2**-62 units; the curve bends away from the line, so every landing is checked exactly
    and a move that does not lower the exact waste is halved until it does (or dropped).
    """
    numerator, denominator = slope
    beta = (numerator % denominator << 62) // denominator
    base = scaled_in + gamma * u
    w = (rate * u % base << 62) // base
    # convergents 1/0 and 0/1: residual sizes |q*beta - p*2**62|; their signs alternate
    q_prev, q, size_prev, size, rising = 0, 1, 1 << 62, beta, False
    limit = high - low
    while size and q <= limit and w:
        if size <= w:  # a residual below 0 lowers the waste moving up, above 0 moving down
            copies = min(w // size, ((high - u) if rising else (u - low)) // q)
            move = q if rising else -q
            while copies > 0:
                landed = u + copies * move
                base = scaled_in + gamma * landed
                landed_w = (rate * landed % base << 62) // base
                if landed_w < w:
                    u, w = landed, landed_w
                    break
                copies //= 2
        term = size_prev // size
        q_prev, q = q, q_prev + term * q
        size_prev, size = size, size_prev - term * size
        rising = not rising
    return u
