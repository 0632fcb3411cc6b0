"""The exact path primitives of V2 cycle sizing, and its middle-hop search through two coarse
tokens (WETH -> USDC -> USDT -> WETH) where the closed form's walk cannot see the middle hop's
rounding: sizing.py calls `sawtooth_search` where middle_hits.py gives up (see sizing.py's
docstring for the whole method)."""

from __future__ import annotations

from collections.abc import Sequence
from math import isqrt

from mev_common.amm.rotation import convergent_steps, descend
from mev_common.amm.v2 import FEE_DENOMINATOR

# One unit of each middle token must be worth more than this many units of the start token for
# the middle search to pay (WETH -> USDC: ~3e8 wei a unit). Near parity (18-decimal tokens) the
# rounding waste is a few wei and the band (2) would hold almost every u: never search there.
SAWTOOTH_MIN_UNITS = 1e6
# At most this many middle amounts are measured by (2): a guard, so no pool state can make the
# search run away (detect's hot path calls it; ~5 µs a measure).
SAWTOOTH_MAX_VISITS = 20_000
SEMI_KEEP = 3
# (1) descends only where the curve is within this share of the stopping gap (MIDDLE_GAP) of
# its bound: further out a smaller waste costs more on the curve than it saves (it once landed
# 1e6 wei below the bound, at a waste of 2e-7 units, and (2) had to run: ~250 µs).
DESCENT_SHARE = 0.5
DESCENTS = 4  # passes of (1), each re-reading the slope where the last one landed
MIDDLE_GAP = 1e-3  # of one unit of the middle hop's output, in start-token units

PathReserves = Sequence[tuple[int, int, int]]


def path_output(amount_in: int, path_reserves: PathReserves) -> int:
    """Exact path output; 0 where a hop would get nothing (the contract would revert)."""
    amount = amount_in
    for reserve_in, reserve_out, fee_bps in path_reserves:
        if amount <= 0:
            return 0
        with_fee = amount * (FEE_DENOMINATOR - fee_bps)
        amount = with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR + with_fee)
    return amount


def least_input(amount_out: int, path_reserves: PathReserves) -> int | None:
    """Least input whose exact path output is >= amount_out; None if the pools cannot pay it.

    Each hop is monotone, so inverting them one by one from the last hop gives the least input.
    """
    amount = amount_out
    for reserve_in, reserve_out, fee_bps in reversed(path_reserves):
        if amount >= reserve_out:
            return None
        numerator = amount * reserve_in * FEE_DENOMINATOR
        amount = -(-numerator // ((FEE_DENOMINATOR - fee_bps) * (reserve_out - amount)))
    return amount


def coarse_middle(path_reserves: PathReserves) -> bool:
    """Whether both middle tokens of a 3-hop cycle are coarse: one unit of each is worth more
    than SAWTOOTH_MIN_UNITS of the start token (WETH -> USDC -> USDT -> WETH)."""
    value = 1.0
    for reserve_in, reserve_out, fee_bps in path_reserves[:2]:
        value *= reserve_in * FEE_DENOMINATOR / ((FEE_DENOMINATOR - fee_bps) * reserve_out)
        if value <= SAWTOOTH_MIN_UNITS:
            return False
    return True


def sawtooth_search(
    path_reserves: PathReserves,
    curve: tuple[int, int, int],
    start_in: int,
    start_profit: int,
    max_input: int | None,
    bound: int,
    exact: bool,
) -> tuple[int, int, int] | None:
    """Best (input, output, profit) beating `start_profit` where the middle hop wastes least.

    Through two coarse tokens (USDC -> USDT) the middle hop floors away up to one unit of the
    second (~3e8 wei of WETH); the input absorbs only the first hop's rounding. Over the first
    middle amount u the middle hop's exact output is N(u) / D(u), nearly linear, so its waste
    frac(N(u) / D(u)) is a rotation: (1) descend to a small waste by the convergent jumps of
    its slope (rotation.descend: the greedy Ostrowski walk on integers, each landing checked
    exactly as the slope drifts), within the u whose curve is near the bound; then
    (2) any u that beats the best must waste less than (bound - best) / (the last hop's least
    slope) there, so visit every such u reachable by (semi)convergent steps (the gaps between
    such points, by the three-gap theorem) and measure each exactly. Unless `exact`, (2) is
    skipped when (1) ends within MIDDLE_GAP of one middle unit of the bound (~200 µs saved).
    """
    in2, out2, fee2 = path_reserves[1]
    in3, out3, fee3 = path_reserves[2]
    first = path_reserves[:1]
    gamma2, scaled_in2 = FEE_DENOMINATOR - fee2, in2 * FEE_DENOMINATOR
    gamma3, scaled_in3 = FEE_DENOMINATOR - fee3, in3 * FEE_DENOMINATOR

    def waste_at(u: int) -> float:
        base = scaled_in2 + gamma2 * u
        return (gamma2 * out2 * u % base) / base

    def measure(u: int) -> tuple[int, int, int] | None:
        x = least_input(u, first) if u > 0 else None  # no input buys nothing
        if x is None or (max_input is not None and x > max_input):
            return None
        out = path_output(x, path_reserves)
        return x, out, out - x

    u = path_output(start_in, first)
    # (1) only where the curve is within a share of the gap of the bound: a descent further
    # out buys a smaller waste with a larger loss on the curve
    z = gamma2 * out2 * u // (scaled_in2 + gamma2 * u)
    gap = MIDDLE_GAP * gamma3 * out3 * scaled_in3 / (scaled_in3 + gamma3 * z) ** 2
    low, high = window(curve, first, max(start_profit, bound - int(gap * DESCENT_SHARE)), max_input)
    if not low <= u <= high:
        low, high = window(curve, first, start_profit, max_input)
    for _ in range(DESCENTS):  # each from where the last landed, with the slope there
        base = scaled_in2 + gamma2 * u
        slope = (gamma2 * out2 * scaled_in2, base * base)
        landed_u = descend(u, low, high, gamma2 * out2, scaled_in2, gamma2, slope)
        if landed_u == u:
            break
        u = landed_u
    waste = waste_at(u)
    landed = measure(u)
    best = landed if landed is not None and landed[2] > start_profit else None
    profit = best[2] if best else start_profit

    z = gamma2 * out2 * u // (scaled_in2 + gamma2 * u)
    if (
        not exact
        and bound - profit
        < MIDDLE_GAP * gamma3 * out3 * scaled_in3 / (scaled_in3 + gamma3 * z) ** 2
    ):
        return best

    # (2) The last hop's slope is least at the largest middle output the window allows.
    low, high = window(curve, first, profit, max_input)
    steps = convergent_steps(*slope, high - low, SEMI_KEEP)
    z_top = gamma2 * out2 * high // (scaled_in2 + gamma2 * high) + 1
    slope3 = gamma3 * out3 * scaled_in3 / (scaled_in3 + gamma3 * z_top) ** 2
    # A step's residual drifts with the slope, by at most span * (distance from u0 + span) * bend.
    bend = 2.0 * gamma2 * gamma2 * out2 * scaled_in2 / (scaled_in2 + gamma2 * low) ** 3
    limit = (bound - profit + 1) / slope3 * (1 + 1e-9)
    # Only a step that moves the waste by less than the band is wide can join two such u.
    reach = high - low
    near = [(q, e) for q, e in steps if abs(e) < limit + q * (reach + q) * bend + 1e-12]
    u0 = u
    frontier, seen = [(u, waste_at(u))], {u}
    while frontier and len(seen) < SAWTOOTH_MAX_VISITS:
        centre, centre_waste = frontier.pop()
        if centre_waste >= limit:
            continue  # the band narrowed since: no longer a candidate, nor a way to one
        for span, residual in near:
            slack = span * (abs(centre - u0) + span) * bend + 1e-12
            for u, expected in (
                (centre + span, centre_waste + residual),
                (centre - span, centre_waste - residual),
            ):
                if not -slack <= expected < limit + slack or u in seen or not low <= u <= high:
                    continue
                waste = waste_at(u)
                if waste >= limit:
                    continue
                seen.add(u)
                frontier.append((u, waste))
                found = measure(u)
                if found is not None and found[2] > profit:
                    best, profit = found, found[2]
                    limit = (bound - profit + 1) / slope3 * (1 + 1e-9)
    return best


def window(
    curve: tuple[int, int, int], first: PathReserves, profit: int, max_input: int | None
) -> tuple[int, int]:
    """The first-hop outputs u whose least input could still earn more than `profit`, given
    the path's (A, B, C) (`compose`) and its first hop.

    The unrounded profit A*x/(B+C*x) - x exceeds `profit` only strictly between the roots of
    C*x^2 + (B + C*profit - A)*x + profit*B; outside them no input can beat it.
    """
    big_a, big_b, big_c = curve
    linear = big_b + big_c * profit - big_a
    disc = linear * linear - 4 * big_c * profit * big_b
    if disc <= 0:
        return 1, 0
    root = isqrt(disc)
    x_low = max(1, (-linear - root) // (2 * big_c))
    x_high = (-linear + root) // (2 * big_c) + 1
    if max_input is not None:
        x_high = min(x_high, max_input)
    return path_output(x_low, first), path_output(x_high, first) + 1
