"""A float screen for V2 cycles: bounds on `sizing.profit_bound` in ~1 µs, without big integers.

Why: detect's backrun search reads ~50 cycles a pending swap (the victim's, then each
follow-on's) and 88% of them are dropped by their exact profit bound (`cycle_reserves` +
`compose` + `isqrt` on 80-digit integers, ~7 µs a cycle, the largest item in detect's CPU a
trigger). Their bound is far below the minimum (gas at the strategy's max fee): a float
estimate with a proven error margin says so at a fraction of the cost, and only cycles it
cannot rule out take the exact path, so every decision and every count stays the exact one.

The math: the path's output is A*x / (B + C*x) (sizing.compose) and the exact bound is
ceil((A + B - 2*isqrt(A*B)) / C), 0 when A <= B. With r = A/B and k = C/B (a product and a
sum of positive per-hop floats: r *= gamma*R_out / (R_in*D), k += r_before*gamma / (R_in*D)),
the real curve's maximum is (sqrt(r) - 1)^2 / k, and the exact bound lies between it and it
plus 1 + 2/C (isqrt floors, the ceiling adds < 1; C >= 1). Each float op errs by half an ulp
(1.1e-16); a 3-hop r or k is within ~20 ulps, so a relative margin of 1e-12 (50,000 times that)
around r and k, and 1e-9 on the final division, makes `low` <= exact <= `high`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import sqrt
from typing import NamedTuple

from mev_common.amm.v2 import FEE_DENOMINATOR, V2Pool

MARGIN = 1e-12  # relative, around r and k (see the module docstring)
DIVIDE_MARGIN = 1e-9  # relative, on (sqrt(r) - 1)^2 / k
ROUNDING = 3.0  # exact - real curve maximum <= 1 + 2 / C <= 3
MAX_RESERVE = 2**200  # beyond, a float of it may overflow later products: no screen

# A pool's screen: (token0, m0, g0, m1, g1): selling token0 multiplies r by m0 and adds r * g0
# to k (token1: m1, g1).
Rates = tuple[str, float, float, float, float]

# per pool address: the pool value its rates were computed for, and them (None: a zero
# reserve, no screen). Checked by identity: a pool whose state changed is a new value, so its
# rates are recomputed once; a search reads them through `pool_rates` once per distinct pool.
_cache: dict[str, tuple[V2Pool, Rates | None]] = {}


def pool_rates(pool: V2Pool) -> Rates | None:
    """The pool's screen (cached), None when it has none (a reserve 0 or out of range)."""
    cached = _cache.get(pool.address)
    if cached is not None and cached[0] is pool:
        return cached[1]
    rates = _rates(pool)
    _cache[pool.address] = (pool, rates)
    return rates


def _rates(pool: V2Pool) -> Rates | None:
    r0, r1 = pool.reserve0, pool.reserve1
    gamma = FEE_DENOMINATOR - pool.fee_bps
    if not (0 < r0 < MAX_RESERVE and 0 < r1 < MAX_RESERVE) or gamma <= 0:
        return None
    in0, in1 = float(r0 * FEE_DENOMINATOR), float(r1 * FEE_DENOMINATOR)
    return pool.token0, gamma * float(r1) / in0, gamma / in0, gamma * float(r0) / in1, gamma / in1


def v2_bounds(
    hops: Sequence[tuple[str, str, str]], rates: Mapping[str, Rates | None]
) -> tuple[float, float] | None:
    """(low, high) with low <= `profit_bound(cycle_reserves(cycle, pools))` <= high, for the
    cycle's `hops` (CycleHop: pool, token_in, token_out), given each pool's `pool_rates`;
    None when it cannot be screened (a pool without rates). (0, 0) when no input can profit
    (A <= B for sure). A token_in that is not token0 is taken as token1: the caller's cycles
    come from the pools' own tokens (cycle_reserves raises on a stranger)."""
    r, k = 1.0, 0.0
    for pool_address, token_in, _ in hops:
        entry = rates.get(pool_address)
        if entry is None:
            return None
        if token_in == entry[0]:
            k += r * entry[2]
            r *= entry[1]
        else:
            k += r * entry[4]
            r *= entry[3]
    return _bounds(r, k)


def _bounds(r: float, k: float) -> tuple[float, float]:
    """`v2_bounds` from the cycle's r and k."""
    r_high = r * (1 + MARGIN)
    if r_high <= 1.0:
        return 0.0, 0.0
    d_high = sqrt(r_high) - 1.0
    high = d_high * d_high / (k * (1 - MARGIN)) * (1 + DIVIDE_MARGIN) + ROUNDING
    r_low = r * (1 - MARGIN)
    if r_low <= 1.0:
        return 0.0, high
    d_low = sqrt(r_low) - 1.0
    return d_low * d_low / (k * (1 + MARGIN)) * (1 - DIVIDE_MARGIN), high


KEEP, UNPROFITABLE, BELOW_MIN = 0, 1, 2  # `v2_verdict`'s answers
SKIP = -1  # `v2_verdicts`: a cycle of a length no strategy takes (not searched)


def v2_verdict(
    hops: Sequence[tuple[str, str, str]], rates: Mapping[str, Rates | None], needed: int
) -> int:
    """What the exact bound would say of the cycle against `needed` (gas plus minimum), where
    the screen alone can tell: UNPROFITABLE (exact bound < 1, so < needed), BELOW_MIN
    (1 <= exact bound < needed); KEEP when the exact bound must decide."""
    bounds = v2_bounds(hops, rates)
    return KEEP if bounds is None else _verdict(bounds, needed)


def _verdict(bounds: tuple[float, float], needed: int) -> int:
    if bounds[1] >= needed:
        return KEEP
    if bounds[1] < 1:
        return UNPROFITABLE
    return BELOW_MIN if bounds[0] >= 1 else KEEP


class Compiled(NamedTuple):
    """A fixed list of cycles laid out for `v2_verdicts`: each distinct pool once (`pools`,
    with the token0 it had), each hop an offset into the flat list of the pools' rates
    (`flat_rates`): 4 floats a pool, +0 selling token0, +2 selling token1."""

    pools: tuple[str, ...]
    token0: tuple[str, ...]
    legs: tuple[tuple[int, ...], ...]


def compile_cycles(
    cycles: Sequence[Sequence[tuple[str, str, str]]], pools: Mapping[str, V2Pool | object]
) -> Compiled | None:
    """`cycles` (each its hops) laid out once; None when a pool is missing or not a V2 pair."""
    slot: dict[str, int] = {}
    token0: list[str] = []
    legs = []
    for hops in cycles:
        leg = []
        for pool_address, token_in, _ in hops:
            if pool_address not in slot:
                pool = pools.get(pool_address)
                if not isinstance(pool, V2Pool):
                    return None
                slot[pool_address] = len(token0)
                token0.append(pool.token0)
            i = slot[pool_address]
            leg.append(4 * i + (0 if token_in == token0[i] else 2))
        legs.append(tuple(leg))
    return Compiled(tuple(slot), tuple(token0), tuple(legs))


def v2_verdicts(
    legs: Sequence[Sequence[int]], flat: Sequence[float], needed: Mapping[int, int]
) -> list[int]:
    """`v2_verdict` of each compiled cycle (`Compiled.legs`) against `needed` by hop count
    (SKIP for a count not in it), from `flat` (each pool's Rates but its token0, in
    `Compiled.pools`' order). The same floats as `v2_bounds` (the same products and sums in
    the same order) at a fraction of its cost: r first, k only where r leaves it open (most
    cycles, the wrong direction of every loop, end at r <= 1)."""
    out = []
    up = 1 + MARGIN
    quick = all(n >= 1 for n in needed.values())  # r <= 1 is UNPROFITABLE only against >= 1
    for leg in legs:
        n = len(leg)
        if n not in needed:
            out.append(SKIP)
            continue
        if n == 2:
            a, b = leg
            ma = flat[a]
            r = ma * flat[b]
            if quick and r * up <= 1.0:
                out.append(UNPROFITABLE)
                continue
            k = flat[a + 1] + ma * flat[b + 1]
        elif n == 3:
            a, b, c = leg
            ma = flat[a]
            mab = ma * flat[b]
            r = mab * flat[c]
            if quick and r * up <= 1.0:
                out.append(UNPROFITABLE)
                continue
            k = flat[a + 1] + ma * flat[b + 1] + mab * flat[c + 1]
        else:
            r, k = 1.0, 0.0
            for i in leg:
                k += r * flat[i + 1]
                r *= flat[i]
        out.append(_verdict(_bounds(r, k), needed[n]))
    return out
