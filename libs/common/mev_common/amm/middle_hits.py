"""The exact optimum of a V2 3-hop cycle through two coarse middle tokens, by enumerating hits.

Why: through WETH -> USDC -> USDT -> WETH the middle hop floors away up to one USDT unit
(~3e8 wei), and the best input is the least one reaching a first middle amount u where that
floor wastes little, near the curve's top: a needle among ~1e6 flat u (sizing.py). The waste
is frac(r(u)), r(u) = N(u) / D(u) the hop's unrounded output: near the top's u, the centre c,
r(u) = r(c) + r'(c) * (u - c) - E(u), 0 <= E(u) <= |r''| * (u - c)**2 / 2 (r is concave), a
rotation of u plus a small bend. A u earning more than a profit level wastes less than
(bound - level) / (the last hop's least slope), less alpha * (|u - c| - 2)**2 as the curve falls
from its top (alpha: the profit's least curvature in u, in waste units; it holds the middle
hop's own bend, so the two nearly cancel), and lies within the reach where that is positive.
So its linear value lies in an interval [0, L); the u whose linear value does are the hits of
a rotation, and from one hit the next is one of three steps a, b, a + b (the three-gap theorem
for first returns). One Euclid on the slope gives a and b and, by the same greedy moves, a
first hit; then each hit within reach is visited out from the centre (a few integer
operations), its exact waste checked against the cap there, the few that pass measured on the
exact hops. The first level is where ~HITS hits are expected; if no u reaches it, the next one
lies lower (down to the best found, which then proves itself). Every answer is the exact
integer optimum (bench scenario 5: 57 of its 173 such cycles earn more than the walk-and-descent
search before, by up to 167,440 wei, and one 9,631 wei more than that search's gap_ppm=0 mode),
in about 3/4 of its time. Floats carry the window and limits, each with a 1e-9 slack far above
their rounding. Under an input cap below the optimum `capped_middle` walks down from the cap
instead. It gives up (None, and sizing.py runs the search before) where the model is too
loose (L above 1/MAX_SHARE of a unit, the bend near a unit) or the walk too long (MAX_VISITS).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt

from mev_common.amm.v2 import FEE_DENOMINATOR

SCALE = 1 << 62  # fractional parts in 2**-62 units: the Euclid stays on machine-sized integers
HITS = 12.0  # hits expected at the first level (fewer: a second level more often, ~15 µs)
GROW = 2.0  # after a level where no u reaches it, the next one's gap to the bound: times this
FAR_GROW = 8  # at most this much further when no hit was inside (the nearest one is out)
MAX_SHARE = 16  # give up when L passes 1/16 of a unit: the model no longer narrows much
MAX_VISITS = 4_000  # hits visited at most, all levels
MAX_TERMS = 200  # Euclid steps at most (62-bit slopes need ~90)
MAX_CAP_VISITS = 2_000  # first middle amounts walked at most under a binding cap (~1 µs each)

Hop = tuple[int, int, int]
Found = tuple[int, tuple[int, int, int], int]  # input, each hop's output, profit


def returns_and_hit(beta: int, y: int, length: int) -> tuple[int, int, int, int, int, int] | None:
    """(a, ea, b, eb, shift, y_hit): the rotation y -> y + beta (mod SCALE), interval [0, length).

    a is the least n >= 1 with n*beta mod SCALE < length (ea that value), b the least n >= 1
    with n*beta mod SCALE > SCALE - length (eb that value - SCALE, < 0): from a hit at y, the
    next hit is a on if y + ea < length, else b on if y + eb >= 0, else a + b on. The pairs are
    the one-sided best approximations of beta, each shrunk by multiples of the other (the slow
    Euclid, a partial quotient at a time); y is lowered by each as it shrinks, just enough to
    reach [0, length) (a greedy Ostrowski walk), so `shift` moves y to a hit y_hit near where it
    was. None if beta is degenerate (rational with a short period).
    """
    if beta <= 0:
        return None
    pn, pe, qn, me = 1, beta, 0, SCALE  # pn*beta = pe, qn*beta = -me (mod SCALE); pe, me > 0
    shift = 0
    if y >= length and y >= pe:  # -pn lowers y by pe
        k, rest = divmod(y, pe)
        if rest < length - pe:  # fewer suffice
            k = (y - length) // pe + 1
            rest = y - k * pe
        y = rest
        shift -= k * pn
    for _ in range(MAX_TERMS):  # each remainder computed once: ~7 terms on the hot path
        if pe > me:
            if pe < length:
                return pn, pe, qn, -me, shift, y
            j, rest = divmod(pe - 1, me)  # as far as the sign holds, or just below length
            rest += 1
            if rest < length:
                j = (pe - length) // me + 1
                rest = pe - j * me
            pn += j * qn
            pe = rest
            if y >= length and y >= pe:
                k, rest = divmod(y, pe)
                if rest < length - pe:
                    k = (y - length) // pe + 1
                    rest = y - k * pe
                y = rest
                shift -= k * pn
        elif me > pe:
            if me < length and qn:
                return pn, pe, qn, -me, shift, y
            j, rest = divmod(me - 1, pe)
            rest += 1
            if rest < length:
                j = (me - length) // pe + 1
                rest = me - j * pe
            qn += j * pn
            me = rest
            if y >= length and y >= me:  # +qn lowers y by me
                k, rest = divmod(y, me)
                if rest < length - me:
                    k = (y - length) // me + 1
                    rest = y - k * me
                y = rest
                shift += k * qn
        else:
            return None
    return None


def exact_middle(
    path: Sequence[Hop],
    curve: tuple[int, int, int],
    x_top: int,
    bound: int,
    max_input: int | None,
    floor_min: int,
) -> tuple[Found | None] | None:
    """(the best input's (input, hop outputs, profit), or None if none earns >= floor_min,)
    for a 3-hop path with curve (A, B, C) (sizing.compose), the floor of its unrounded optimum
    x_top and bound; None if the search gives up (and under a binding `max_input`).
    Exact: proven against every u that could beat it.
    """
    if max_input is not None and x_top >= max_input:
        return None  # the curve still rises at the cap: its fall gives no window
    (in1, out1, fee1), (in2, out2, fee2), (in3, out3, fee3) = path
    g1, s1 = FEE_DENOMINATOR - fee1, in1 * FEE_DENOMINATOR
    g2, s2 = FEE_DENOMINATOR - fee2, in2 * FEE_DENOMINATOR
    g3, s3 = FEE_DENOMINATOR - fee3, in3 * FEE_DENOMINATOR
    rate1, rate2, rate3 = g1 * out1, g2 * out2, g3 * out3
    if s1 <= rate1:
        return None  # a u costs under 1 wei: the first hop could skip a u (sizing: coarse only)
    # The linear model of the middle hop's output at the top's u, the centre.
    centre = rate1 * x_top // (s1 + g1 * x_top)
    if centre < 1:
        return None
    base = s2 + g2 * centre
    base2 = base * base
    beta = (rate2 * s2 % base2 << 62) // base2
    y_centre = (rate2 * centre % base << 62) // base
    # Floats from here to `length` (relative errors ~1e-15, under the 1e-9 slack each takes).
    big_a, big_b, big_c = float(curve[0]), float(curve[1]), float(curve[2])
    f_s1, f_out1, f_rate2, f_s2 = float(s1), float(out1), float(rate2), float(s2)
    f_rate3, f_s3 = float(rate3) * float(s3), float(s3)
    f_centre, f_x_top = float(centre), float(x_top)  # converted once, not per operation
    den = big_b + big_c * f_x_top
    x_per_u = f_s1 * f_out1 / (g1 * (f_out1 - f_centre) ** 2)  # the input a u costs, at the top
    base_top = f_s2 + g2 * f_centre
    v_top = f_rate2 * f_centre / base_top
    slope3 = f_rate3 / (f_s3 + g3 * v_top) ** 2
    # half the profit's curvature in u, in waste units (_alpha), and of the hop's r (its bend)
    alpha_top = (big_a / den) * (big_b / den) * (big_c / den) * x_per_u * x_per_u / slope3
    half_rho_top = g2 * f_rate2 * f_s2 / (base_top * base_top * base_top)
    # How far, relative, those can move within reach R of the centre: at most R * per_reach +
    # fixed (the curvature falls as (B + C*x)**-3, the input per u as (out1 - u)**-2, the last
    # hop's slope as (s3 + g3*v)**-2, with x, v moving at most R*x_top/centre, R*v_top/centre)
    x_rel = 3.03 * x_per_u / f_x_top
    per_reach = x_rel + 2 / (f_out1 - f_centre) + 2 / f_centre
    fixed = x_rel + 6 / f_x_top + 4 / v_top
    # The first level: where ~HITS hits are expected (2 * limit**1.5 / sqrt(alpha)).
    gap = int((HITS * sqrt(alpha_top) / 2) ** (2 / 3) * slope3) + 1
    best: Found | None = None
    profit = floor_min - 1
    visits = 0
    while True:
        level = bound - gap if bound - gap > profit else profit
        # Only u within reach of the centre can beat the level (checked below).
        reach = int(sqrt((bound - level + 1) / slope3 / alpha_top) * 1.01) + 4
        low, high = centre - reach if centre - reach > 1 else 1, centre + reach
        if 2 * high >= out1:
            return None
        moved = reach * per_reach + fixed
        if moved < 1e-3:  # a window small beside the top: the top's values, made worse by that
            slope3_low = slope3 * (1 - moved)  # the last hop's, least over the window
            alpha = alpha_top * (1 - 3 * moved) * (1 - 1e-9)
            half_rho = half_rho_top * (1 + 4 * reach / centre) * (1 + 1e-9)  # |r''| / 2, most
        else:
            v_high = f_rate2 * high / (f_s2 + g2 * high) * (1 + 1e-12) + 2
            slope3_low = f_rate3 / (f_s3 + g3 * v_high) ** 2
            x_high = f_s1 * high / (g1 * (f_out1 - high)) * (1 + 1e-12) + 2  # the most input
            alpha = _alpha(big_a, big_b, big_c, x_high, f_s1, f_out1, g1, low, 1 - 1e-9)
            alpha /= slope3_low
            half_rho = g2 * f_rate2 * f_s2 / (f_s2 + g2 * low) ** 3 * (1 + 1e-9)
        # a u beating the level (later: the best) wastes less than this share of a unit
        limit = (bound - level + 1) / slope3_low * (1 + 1e-9)
        if alpha * (reach - 2) ** 2 < limit or half_rho * reach * reach + limit >= 0.25:
            return None  # the window is not what the top said, or the model drifts too far
        margin = reach + 2  # the floors of beta and y, in 2**-62 units
        margin2 = 2 * margin
        drift = 8 * half_rho if alpha >= 2 * half_rho else _most_drift(half_rho, alpha, reach)
        length = int((limit + drift) * SCALE * (1 + 1e-9)) + margin2 + 64  # + float error
        if length * MAX_SHARE >= SCALE or (high - low) * length > MAX_VISITS * SCALE:
            return None
        found = returns_and_hit(beta, y_centre + margin, length)
        if found is None:
            return None
        a, ea, b, eb, start, y_start, far = _first_hit(centre, low, high, found, length, beta)
        # From the start both ways, towards the centre first (where the best earn most).
        for forward in () if far else (True, False) if start < centre else (False, True):
            u, y = start, y_start
            step = forward != (start < centre)  # the second way: the start was visited
            while True:
                if step and forward:  # the next hit
                    if y + ea < length:
                        u, y = u + a, y + ea
                    elif y + eb >= 0:
                        u, y = u + b, y + eb
                    else:
                        u, y = u + a + b, y + ea + eb
                elif step:  # the previous hit
                    if y - eb < length:
                        u, y = u - b, y - eb
                    elif y - ea >= 0:
                        u, y = u - a, y - ea
                    else:
                        u, y = u - a - b, y - ea - eb
                step = True
                if u > high or u < low:
                    break
                visits += 1
                if visits > MAX_VISITS:
                    return None  # a rate near an integer: runs too long to walk
                d = u - centre if u > centre else centre - u
                cap = limit - alpha * (d - 2) * (d - 2) if d > 2 else limit  # the curve's fall
                if cap <= 0:
                    if (u > centre) == forward:
                        break  # and further out, less still
                else:
                    base = s2 + g2 * u
                    v, waste = divmod(rate2 * u, base)  # the hop's output, and what it floors
                    if waste / base < cap:
                        x = -(-u * s1 // (g1 * (out1 - u)))
                        if max_input is None or x <= max_input:
                            # its first hop pays u (a coarse u costs > 1 wei: no skip)
                            out = v * rate3 // (s3 + v * g3) if v else 0
                            if out - x > profit:
                                best, profit = (x, (u, v, out), out - x), out - x
                                limit = (bound - profit + 1) / slope3_low * (1 + 1e-9)
                    elif d > 4 and (u > centre) == forward:
                        # Out from here a run of like steps (a on, or b back) only raises the
                        # model's value while the cap falls faster than the hop bends: if the
                        # least waste the model allows here misses the cap, so does the run.
                        if (y - margin2) / SCALE - half_rho * d * d >= cap:
                            if forward and y + ea < length:
                                k = (length - 1 - y) // ea if ea else (high - u) // a + 1
                                u, y = u + k * a, y + k * ea
                            elif not forward and y - eb < length:
                                k = (length - 1 - y) // -eb
                                u, y = u - k * b, y - k * eb
        if profit >= level:
            return (best,)  # every u that could beat the answer was visited
        gap = int(gap * GROW) if best is None else min(int(gap * GROW), bound - profit)
        if far:  # no hit inside: widen to the nearest one, if not too far
            gap = max(gap, min(int(alpha_top * slope3 * (far + 2) ** 2 * 1.05), gap * FAR_GROW))


def _alpha(
    big_a: float,
    big_b: float,
    big_c: float,
    x: float,
    s1: float,
    out1: float,
    g1: int,
    u: int,
    slack: float,
) -> float:
    """Half the unrounded profit's curvature in u (wei per u**2), at most: the curve's in x
    where it is least (at the largest input x; 2AB*C / (B + C*x)**3 falls with x) times the
    square of the least input a u costs (the first hop's inverse slope, least at the least u).
    """
    den = big_b + big_c * x
    per_u = s1 * out1 / (g1 * (out1 - u) ** 2)
    return (big_a / den) * (big_b / den) * (big_c / den) * per_u * per_u * slack


def _most_drift(half_rho: float, alpha: float, reach: int) -> float:
    """max over 0 <= d <= reach of half_rho * d**2 - alpha * max(0, d - 2)**2 (>= 0): how far
    above a u's waste limit its linear value can be, d from the centre.

    The model's value is the waste plus up to half_rho * d**2 (the hop's bend), while the waste
    limit itself falls by alpha * (d - 2)**2 as the curve falls from its top (its curvature in
    u, over the last hop's slope; the middle hop's own bend is part of that curvature, so the
    two nearly cancel). A quadratic in d: its largest value is at an end or at its vertex.
    """
    ends = max(4 * half_rho, half_rho * reach * reach - alpha * max(0, reach - 2) ** 2)
    if alpha > half_rho:
        vertex = 2 * alpha / (alpha - half_rho)
        if 2 < vertex < reach:
            return max(ends, half_rho * vertex * vertex - alpha * (vertex - 2) ** 2)
    return ends


def _first_hit(
    centre: int,
    low: int,
    high: int,
    found: tuple[int, int, int, int, int, int],
    length: int,
    beta: int,
) -> tuple[int, int, int, int, int, int, int]:
    """(a, ea, b, eb, a hit in [low, high], its linear value, 0), from `returns_and_hit`'s hit
    at centre + shift; or, if the window holds none, (..., how far from the centre one is)."""
    a, ea, b, eb, shift, y = found
    start = centre + shift
    if low <= start <= high:
        return a, ea, b, eb, start, y, 0
    # the greedy landed outside: the first hit from low
    y_low = (y + (low - start) * beta) % SCALE
    top = SCALE - y_low  # how far the rotation is from 0 there
    n = 0 if y_low < length else _least_multiple_in(beta, top, top + length - 1)
    if n is not None and low + n <= high:
        return a, ea, b, eb, low + n, (y_low + n * beta) % SCALE, 0
    far = start - centre if start > centre else centre - start  # none inside (a run passed by)
    return a, ea, b, eb, start, y, far if n is None else min(far, low + n - centre)


def _least_multiple_in(step: int, low: int, high: int, modulus: int = SCALE) -> int | None:
    """The least n >= 0 with low <= n*step mod modulus <= high (0 <= low <= high < modulus),
    None if none: Euclid on (modulus, step), each level asking where the multiples of the
    smaller step wrap into the range."""
    if low == 0:
        return 0
    step %= modulus
    if step == 0:
        return None
    n = -(-low // step)
    if n * step <= high:
        return n
    wraps = _least_multiple_in(modulus % step, -high % step, -low % step, step)
    if wraps is None:
        return None
    return -(-(modulus * wraps + low) // step)


def capped_middle(
    path: Sequence[Hop], curve: tuple[int, int, int], max_input: int, floor_min: int
) -> tuple[Found | None] | None:
    """`exact_middle`'s answer under a cap at or below the unrounded optimum; None past
    MAX_CAP_VISITS.

    Below the optimum the curve rises, so an input beats a profit only above the curve's lower
    root, and each first middle amount u earns most at its least input (rising with u). So walk
    u down from the cap's, each measured exactly at its least input, until the curve there is at
    most the best: no lower u can beat it. Far below the optimum the curve is steep and the walk
    short (it ends within one middle unit's waste, ~3e8 wei of profit, of the cap's u); near the
    optimum it is flat and the walk may not end in time.
    """
    (in1, out1, fee1), (in2, out2, fee2), (in3, out3, fee3) = path
    g1, s1 = FEE_DENOMINATOR - fee1, in1 * FEE_DENOMINATOR
    g2, s2 = FEE_DENOMINATOR - fee2, in2 * FEE_DENOMINATOR
    g3, s3 = FEE_DENOMINATOR - fee3, in3 * FEE_DENOMINATOR
    rate2, rate3 = g2 * out2, g3 * out3
    big_a, big_b, big_c = curve
    u = g1 * out1 * max_input // (s1 + g1 * max_input)  # the cap's; its least input is <= cap
    best: Found | None = None
    profit = floor_min - 1
    for _ in range(MAX_CAP_VISITS):
        if u < 1:
            break
        x = -(-u * s1 // (g1 * (out1 - u)))
        if big_a * x <= (profit + x) * (big_b + big_c * x):
            break  # the curve at x, and below it, is at most the best
        v = u * rate2 // (s2 + u * g2)
        out = v * rate3 // (s3 + v * g3) if v else 0
        if out - x > profit:
            best, profit = (x, (u, v, out), out - x), out - x
        u -= 1
    else:
        return None
    return (best,)
