"""The V2 backrun search's candidates: the cycles whose exact profit bound pays their gas and
minimum, given each cycle's float-screen verdict (mev_common/amm/screen.py). Pure.

Why a layout: a pending swap's search and its follow-ons read the same few fixed tuples of
cycles (CycleIndex.through: one per set of pools a swap moves) over and over, each on a new
state. Laid out once (each pool a slot, each hop an offset into a flat list of the pools'
rates), a search screens all of them in one tight pass, the same floats `v2_verdict` computes
one cycle at a time; search.py's FAST_SCREEN = False takes that road instead, to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from mev_common.amm.cycles import Cycle, cycle_reserves
from mev_common.amm.screen import SKIP, UNPROFITABLE, Compiled, Rates, compile_cycles
from mev_common.amm.sizing import profit_bound
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.messages import Strategy


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cycle whose profit bound pays its gas and minimum: worth sizing if it can still win."""

    net_bound: int  # the bound minus the gas cost: no exact net profit can exceed it
    order: int
    strategy: Strategy
    cycle: Cycle
    gas: int
    max_fee: int
    min_profit: int
    path: list[tuple[int, int, int]] | None  # V2 only: (reserve_in, reserve_out, fee) per hop
    legs: Any  # with a V3 hop: its legs for size_mixed


class Plan(NamedTuple):
    """What every cycle of one hop count shares in one search."""

    name: Strategy
    max_fee: int
    min_profit: int
    v2_gas: int


def needed_by_hops(plans: Mapping[int, Plan | None]) -> dict[int, int]:
    """Gas plus minimum by hop count, for the hop counts a strategy takes."""
    return {n: p.v2_gas * p.max_fee + p.min_profit for n, p in plans.items() if p is not None}


def v2_candidates(
    cycles: Sequence[Cycle],
    pools: Mapping[str, V2Pool],
    verdicts: Sequence[int],
    plans: Mapping[int, Plan | None],
    needs: Mapping[int, int],
) -> tuple[list[Candidate], int, int, int]:
    """`search_steps`'s per-cycle loop for V2-only cycles with no input cap, unsliced, with
    less per cycle, given each cycle's screen verdict (SKIP: no strategy takes its length):
    the same candidates in the same order, and the counts searched, unprofitable and below
    the minimum (it reads ~50 cycles a backrun, most dropped by the screen)."""
    candidates: list[Candidate] = []
    searched = unprofitable = below_min = 0
    for cycle, verdict in zip(cycles, verdicts, strict=True):
        if verdict == SKIP:
            continue
        searched += 1
        if verdict:
            if verdict == UNPROFITABLE:
                unprofitable += 1
            else:
                below_min += 1
            continue
        needed = needs[len(cycle.hops)]
        path = cycle_reserves(cycle, pools)
        bound = profit_bound(path)
        if bound < needed:
            if bound < 1:
                unprofitable += 1
            else:
                below_min += 1
            continue
        plan = plans[len(cycle.hops)]
        assert plan is not None
        gas = plan.v2_gas
        candidates.append(
            Candidate(bound - gas * plan.max_fee, len(candidates), plan.name, cycle, gas,
                       plan.max_fee, plan.min_profit, path, None)
        )  # fmt: skip
    return candidates, searched, unprofitable, below_min


class Layout(NamedTuple):
    """A fixed tuple of cycles laid out for the screen, and a cycle of each hop count in it."""

    cycles: tuple[Cycle, ...]
    compiled: Compiled
    lengths: dict[int, Cycle]


# by the tuple's identity (the tuple kept alive with it, so its id is not reused)
_layouts: dict[int, Layout] = {}
LAYOUTS = 4096


def layout_of(cycles: tuple[Cycle, ...], pools: Mapping[str, V2Pool | V3Pool]) -> Layout | None:
    """The cycles' layout (remembered), None when a pool is missing or not a V2 pair."""
    layout = _layouts.get(id(cycles))
    if layout is not None and layout.cycles is cycles:
        return layout
    compiled = compile_cycles([c.hops for c in cycles], pools)
    if compiled is None:
        return None
    if len(_layouts) >= LAYOUTS:
        _layouts.clear()
    layout = _layouts[id(cycles)] = Layout(cycles, compiled, {len(c.hops): c for c in cycles})
    return layout


def flat_rates(
    layout: Layout,
    pools: Mapping[str, V2Pool | V3Pool],
    rates_of: Callable[[V2Pool], Rates | None],
) -> list[float] | None:
    """Each laid-out pool's rates (`rates_of`: screen.pool_rates) but its token0, in slot
    order; None when a pool is missing, not a V2 pair, not the pair laid out, or unscreened."""
    flat: list[float] = []
    compiled = layout.compiled
    for address, token0 in zip(compiled.pools, compiled.token0, strict=True):
        pool = pools.get(address)
        if not isinstance(pool, V2Pool) or pool.token0 != token0:
            return None
        if (rates := rates_of(pool)) is None:
            return None
        flat += rates[1:]
    return flat
