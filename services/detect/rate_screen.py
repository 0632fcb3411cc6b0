"""The marginal-rate test of cycles through V3 pools, screened in one float pass per search.

Why: a SwapRouter (V3) victim's backrun searches every cycle through the pools it moved (~170
on the devnet), and on `make run` that search was most of a V3 trigger's handler: CPU p50 1.5 /
p95 4 ms against 0.4 / 1.0 ms for a V2 victim, so V3 victims were 11 of the 14 slowest pending
triggers (a long handler is also preempted longer on a busy host). Nearly every one of those
cycles (98.6 % on the devnet flow) fails its first test, `marginal.no_input_profits` (the
composed rate at x = 0 is at most 1), which search.py's general loop reached only after
building each cycle's pools, hop counts, gas and rates one at a time (~5-9 µs a cycle).

Here a fixed tuple of cycles (CycleIndex.through) is laid out once: each distinct (pool,
direction) a slot, each cycle its slots. A search computes each slot's rate once as a float
(the exact integer rate's numerator / denominator, correctly rounded) and each cycle's product
in a tight loop. A product at most 1 - MARGIN says the exact integer product is at most 1 (a
3-5 hop product errs by < 10 roundings, ~1e-15 relative): that cycle is what the general loop
would count searched and unprofitable. Every other cycle (a product near or above 1, a hop
without a rate, a V2-only cycle) goes on to the general loop unchanged, so every decision and
every count stays the exact test's (tests/unit/detect/test_rate_screen.py compares).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import prod
from typing import NamedTuple

from mev_common.amm.cycles import Cycle, CycleIndex
from mev_common.amm.marginal import hop_rate
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool

MARGIN = 1e-12  # relative: far above the float product's error (~1e-15 for 5 hops)
MAX_HOPS = 5  # longer cycles are left to the exact test (the error bound above is for <= 5)
# a slot's rate outside these is left to the exact test: 5 factors inside them never leave the
# float range (no overflow, no underflow before the product is surely below 1)
LOW, HIGH = 2.0**-200, 2.0**200


class RateLayout(NamedTuple):
    """A fixed tuple of cycles laid out for `screen`: each distinct (pool, token_in) once
    (`slots`, with the pool's type and token0 when laid out); the screened cycles grouped by
    hop count, each as (its position, its hops' slots...); the positions of those the screen
    leaves alone (V2 only, or longer than MAX_HOPS)."""

    cycles: tuple[Cycle, ...]
    slots: tuple[tuple[str, str], ...]
    kinds: tuple[tuple[type, str], ...]
    groups: dict[int, tuple[tuple[int, ...], ...]]
    unscreened: tuple[int, ...]
    lengths: dict[int, Cycle]  # a cycle of each hop count in it


# by the tuple's identity (the tuple kept alive with it, so its id is not reused)
_layouts: dict[int, RateLayout] = {}
LAYOUTS = 4096


def rate_layout(
    cycles: tuple[Cycle, ...], pools: Mapping[str, V2Pool | V3Pool]
) -> RateLayout | None:
    """The cycles' layout (remembered), None when a pool is missing or none is V3."""
    layout = _layouts.get(id(cycles))
    if layout is not None and layout.cycles is cycles:
        return layout
    slot: dict[tuple[str, str], int] = {}
    kinds: list[tuple[type, str]] = []
    groups: dict[int, list[tuple[int, ...]]] = {}
    unscreened: list[int] = []
    for position, cycle in enumerate(cycles):
        hop_pools = [pools.get(hop.pool) for hop in cycle.hops]
        if None in hop_pools:
            return None
        if len(hop_pools) > MAX_HOPS or not any(isinstance(p, V3Pool) for p in hop_pools):
            unscreened.append(position)
            continue
        leg = [position]
        for hop, pool in zip(cycle.hops, hop_pools, strict=True):
            assert pool is not None
            key = (hop.pool, hop.token_in)
            if key not in slot:
                slot[key] = len(kinds)
                kinds.append((type(pool), pool.token0))
            leg.append(slot[key])
        groups.setdefault(len(cycle.hops), []).append(tuple(leg))
    if not groups:
        return None
    if len(_layouts) >= LAYOUTS:
        _layouts.clear()
    layout = _layouts[id(cycles)] = RateLayout(
        cycles,
        tuple(slot),
        tuple(kinds),
        {n: tuple(g) for n, g in groups.items()},
        tuple(unscreened),
        {len(c.hops): c for c in cycles},
    )
    return layout


def lay_out_each(
    index: CycleIndex, pools: Mapping[str, V2Pool | V3Pool], addresses: Iterable[str]
) -> int:
    """Lay out now (at a load) the cycles through each of `addresses` alone: what the backrun
    of a single-pool SwapRouter victim (exactInputSingle) searches. Laid out at its first
    victim instead, that cost ~1-4 ms of the trigger (130-400 cycles): over a 130-s
    `make run` 54-64 of ~170 V3 triggers took more than 1 ms of CPU, 23-25 laid out here
    (mostly in the first minute, as the flow meets its 42 V3 pools). ~0.2 s for the devnet's
    42. Returns how many were laid out."""
    return sum(rate_layout(index.through((a,)), pools) is not None for a in addresses)


# per (pool address, token_in): the pool value its float rate was computed for, and it
_cache: dict[tuple[str, str], tuple[V2Pool | V3Pool, float]] = {}
CACHE = 4096
UNSURE = float("inf")  # a hop without a usable rate: its cycle's product is never <= 1


def float_rate(pool: V2Pool | V3Pool, token_in: str) -> float:
    """`hop_rate` as one correctly rounded float (cached by the pool value's identity: a
    changed pool is a new value); UNSURE when it has none, or is outside [LOW, HIGH]."""
    key = (pool.address, token_in)
    cached = _cache.get(key)
    if cached is not None and cached[0] is pool:
        return cached[1]
    rate = hop_rate(pool, token_in)
    value = UNSURE
    if rate is not None and rate[0] > 0 and rate[1] > 0:
        ratio = rate[0] / rate[1]  # int / int: correctly rounded, whatever their size
        value = ratio if LOW <= ratio <= HIGH else UNSURE
    if len(_cache) >= CACHE:
        _cache.clear()
    _cache[key] = (pool, value)
    return value


def screen(
    layout: RateLayout, pools: Mapping[str, V2Pool | V3Pool]
) -> tuple[list[int], dict[int, int]] | None:
    """The positions of the cycles the exact test must still decide, in order, and how many
    of each hop count the screen settled (`no_input_profits` surely holds: the composed rate
    at x = 0 is at most 1). None when a pool is missing or is not the kind (or pair) laid
    out: the caller takes the general path."""
    rates: list[float] = []
    for (address, token_in), (kind, token0) in zip(layout.slots, layout.kinds, strict=True):
        pool = pools.get(address)
        if type(pool) is not kind or pool is None or pool.token0 != token0:
            return None
        rates.append(float_rate(pool, token_in))
    r, high = rates, 1.0 - MARGIN
    left = list(layout.unscreened)
    settled = {}
    for n, group in layout.groups.items():
        if n == 2:
            kept = [g[0] for g in group if r[g[1]] * r[g[2]] > high]
        elif n == 3:
            kept = [g[0] for g in group if r[g[1]] * r[g[2]] * r[g[3]] > high]
        else:
            kept = [g[0] for g in group if prod(r[i] for i in g[1:]) > high]
        settled[n] = len(group) - len(kept)
        left += kept
    if len(layout.groups) > 1 or layout.unscreened:
        left.sort()
    return left, settled
