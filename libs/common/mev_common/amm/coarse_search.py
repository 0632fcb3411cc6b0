"""Through two coarse middle tokens (WETH -> USDT -> USDC -> WETH, V2 or V3 hops): the first
middle amount u whose roundings waste least, searched on a float model of the exact hops.

Why: one unit of a 6-decimal token is ~3e8 wei of WETH, and three roundings each waste up to a
unit near the optimum, whatever the input: the middle hop's output floor (a fast rotation in u,
by the fractional part of its rate), and a V3 middle or last hop's fee floor on its input (a
slow one: none at the inputs its fee period divides, growing by fee/1e6 a unit below them). The
continuous curve is flat over ~1e6 units of u there, so the best u is the one where the sum of
the three wastes is least. The search walks a lattice on which the middle hop's fee floor wastes
nothing (u steps of its fee period from an aligned u), by greedy jumps whose lengths are the
(semi)convergent denominators of the rotations' slopes (the three-gap theorem: the only moves
that bring a rotation closer to 0), doubled while it gains; then with moves straight to the
fee floors' wraps (a fee floor's waste ramps by fee/1e6 a unit, so when two ramp against each
other no short jump gains: make_cases(8) had such cycles); then unit by unit. Each price is
path_model's (~1 µs: every rounding the climb steers by on exact small integers, the smooth
parts as float differences from the exact price where it starts; on 3,102 bench cycles the walk
is the one the exact hops, ~2.5 µs a price, give), and the caller measures what the climb keeps
on the exact hops. At most MAX_EVALS prices, so detect's
hot path stays bounded; a u priced once is remembered (the climb revisits u), still counted
against the budget so the walk, hence the answer, is the same as without the memory.
The hops are local_hop.LocalHop's: a hop priced near one input by the last step of its swap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mev_common.amm.legs import Leg, leg_least_input
from mev_common.amm.local_hop import LocalHop
from mev_common.amm.path_model import model_value
from mev_common.amm.rotation import convergent_denominators

MAX_EVALS = 96  # prices at most (~1 µs each on the model)
JUMP_EVALS = 36  # of which for the jumps alone
POLISH_EVALS = 12  # of which kept for unit moves at the end
GAP_UNITS = 1e-3  # stop this close to the unrounded optimum, in units of the last hop's input
STEP_LIMIT = 4_000  # longest jump, in lattice steps (the flat top spans ~1e6 units)
SEMI_KEEP = 2  # semiconvergent jumps kept at each end of a long partial quotient


def _slope_steps(slope: float, limit: int) -> list[int]:
    """Lattice jumps that bring a rotation of this slope (per step) back near where it was."""
    scale = 1 << 52
    return convergent_denominators(round(slope % 1.0 * scale), scale, limit, SEMI_KEEP)


def coarse_middle_search(
    legs: Sequence[Leg],
    u_c: int,
    max_input: int | None,
    bound: int,
    gap: float = GAP_UNITS,
    hops: tuple[LocalHop, LocalHop, LocalHop] | None = None,
    model: bool = True,
    prices: list[Callable[[int], int | None]] | None = None,
) -> list[int]:
    """First middle amounts u near `u_c` (the best found so far) at which the exact path wastes
    less and less, best last; the caller measures them on the exact path (each at its least
    input). Stops once within `gap` units of the last hop's input of `bound` (the unrounded
    optimum), after MAX_EVALS prices, or when no jump gains. `hops`: the caller's local hops,
    at the first hop's input for u_c, at u_c and at the middle's output for it. `model`: climb
    on path_model's prices (False: on the exact hops); `prices`: gets the price function the
    climb used (u -> profit at u's least input), for the caller to rank its candidates."""
    if hops is None:
        # the first hop around its input (built around its output u_c, a V3 first hop that
        # crosses ticks would price every u by its whole swap)
        first = LocalHop(legs[0], leg_least_input(legs[0], u_c) or u_c)
        middle = LocalHop(legs[1], u_c)
        last = LocalHop(legs[2], middle.out(u_c))
    else:  # the caller's, built at the same amounts
        first, middle, last = hops
    enough = bound - max(1, int(gap * last.rate))
    evals = 0
    first_least_in, middle_out, last_out = first.least_in_fn(), middle.out_fn(), last.out_fn()
    middle_least_in = middle.least_in_fn()
    priced: dict[int, int | None] = {}  # the climb revisits u (a jump back, a failed doubling)

    def exact(u: int) -> int | None:
        x = first_least_in(u)
        if x is None or (max_input is not None and x > max_input):
            return None
        return last_out(middle_out(u)) - x

    price: Callable[[int], int | None] = exact

    period = middle.period if middle.v3 else 1
    u0 = u_c if period == 1 else middle.offset + (u_c - middle.offset) // period * period
    # per lattice step the middle output moves rate * period units (the output floor's turn);
    # a V3 last hop's fee floor turns by that over its own period
    turn = middle.rate * period
    steps = set(_slope_steps(turn, STEP_LIMIT))
    if last.v3 and last.period > 1:
        steps.update(_slope_steps(turn / last.period, STEP_LIMIT))
    moves = sorted(q * period for q in steps)
    if period > 1:  # then off the lattice, by jumps shorter than it: a little fee waste may buy
        # a larger cut of the others
        moves += [q for q in _slope_steps(middle.rate, period - 1) if q not in moves]
    start = x0 = None  # exact(u0), its least input kept for the model's anchor
    if u0 > 0:
        evals = 1
        x0 = first_least_in(u0)
        if x0 is not None and (max_input is None or x0 <= max_input):
            start = last_out(middle_out(u0)) - x0
        priced[u0] = start
    if start is None or x0 is None:
        return []
    if model:  # from here on the float model prices (path_model.py); the caller measures
        price = model_value((first, middle, last), u0, x0, start, max_input, exact)
    if prices is not None:
        prices.append(price)
    best = start
    visited = [u0]

    def aligning(u: int) -> list[int]:
        """Moves from u to the nearest u each V3 fee floor wastes nothing at (the middle hop's
        input, or the least u whose middle output the last hop's floor leaves whole): their
        wastes ramp slowly, so no short jump reaches the wrap."""
        found = []
        if middle.v3 and period > 1:
            low = middle.offset + (u - middle.offset) // period * period
            found += [low - u, low + period - u]
        if last.v3 and last.period > 1:
            z = middle_out(u)
            low = last.offset + (z - last.offset) // last.period * last.period
            for target in (low, low + last.period):
                least = middle_least_in(target)
                if least is not None:
                    found.append(least - u)
        return [q for q in found if q]

    def climb(moves: Sequence[int], budget: int, align: bool = False) -> None:
        """Greedy jumps from the best u while one gains, within `budget` prices in all.
        Prices inline (one is ~1 µs, a call around it a third of that): every u > 0 tried
        counts against the budget, remembered or not."""
        nonlocal best, evals
        n = evals
        try:
            while best < enough and n < budget:
                here = visited[-1]
                for q in (*aligning(here), *moves) if align else moves:
                    for jump in (q, -q):
                        if n >= budget:
                            return
                        # the waste falls linearly along a jump until it wraps: from a jump
                        # that gains, double it while it gains
                        top, landed = best, 0
                        while n < budget:
                            u = here + jump
                            if u <= 0:
                                break
                            n += 1
                            got = priced[u] if u in priced else price(u)
                            priced[u] = got
                            if got is None or got <= top:
                                break
                            top, landed = got, u
                            jump *= 2
                        if landed:
                            best = top
                            visited.append(landed)
                            break
                    else:
                        continue
                    break
                else:
                    return  # no jump gains
        finally:
            evals = n

    # the jumps first; then with the moves to the fee floors' wraps too (from the best so far,
    # so never worse); then unit by unit (the slow fee floors' last turn)
    climb(moves, JUMP_EVALS)
    climb(moves, MAX_EVALS - POLISH_EVALS, align=True)
    climb((1,), MAX_EVALS)
    return visited
