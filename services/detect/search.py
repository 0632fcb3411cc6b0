"""The arbitrage search: which cycles to look at, how big to trade, and whether it pays after gas.

Pure over plain data. Only cycles that touch a pool changed by the trigger are searched
(cycles indexed by pool). 2-hop cycles (one pair on two DEXes) are `cross_dex_arbitrage`,
longer ones `cyclic_arbitrage`; after a victim's pending swap, both are searched on the post-swap
state as `backrun`. Cycles start and end in WETH, so gross profit is in wei and the gas cost at
the strategy's max fee subtracts directly. We never trade ahead of a user's transaction.
A cycle through any Uniswap V3 pool is sized by amm/mixed_sizing.py (range by range, exact
integers); V2-only cycles keep amm/sizing.py.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass

from mev_common.amm.cycles import Cycle, CycleIndex, cycle_reserves
from mev_common.amm.legs import cycle_legs
from mev_common.amm.marginal import Rate, hop_rate, no_input_profits
from mev_common.amm.mixed_sizing import continuous_optimum, size_mixed
from mev_common.amm.screen import (
    SKIP,
    UNPROFITABLE,
    Rates,
    pool_rates,
    v2_verdict,
    v2_verdicts,
)
from mev_common.amm.sizing import CycleTrade, profit_bound, size_trade
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.messages import Strategy
from mev_common.settings import StrategiesSettings

from services.detect.candidates import (
    Candidate,
    Plan,
    flat_rates,
    layout_of,
    needed_by_hops,
    v2_candidates,
)
from services.detect.plans import Fees, plan_for, plans_for, strategy_for
from services.detect.pricing import (
    DEFAULT_PRIORITY_FEE,
    at_victim_fees,
    gas_estimate,
)
from services.detect.rate_screen import rate_layout, screen
from services.detect.slicing import one_pass

MAX_PER_TRIGGER = 5
# Default staleness: after this many blocks the state has moved on (detect.deadline_blocks).
DEADLINE_BLOCKS = 2


# A backrun lands right behind its victim, so it is safe only if no other pending swap with at
# least the victim's tip goes through its pools first (PendingBook's crowding check). Pending
# SwapRouter (V3) swaps are decoded (chain/swap_router_calls.py) and enter that book like
# Router02 ones, so backruns take V3 pools too (False: V2 pairs only, the old behaviour).
BACKRUN_THROUGH_V3 = True
# Which cycles a Router02 (V2) victim's backrun searches: V2-only ones. Mixed cycles through the
# pairs it moved cost ~17x the CPU per trigger (bench.detect_profile, 1,000 V2 victims, load
# ~4: 4,033 us against 237 us) for little more profit; the block search takes them a block later.
# A SwapRouter (V3) victim's backrun searches every cycle through the pools it moved.
V2_VICTIMS_V2_CYCLES_ONLY = True
# Screen V2 cycles with float bounds on their exact profit bound first (amm/screen.py): the
# same decisions and counts (tests/unit/detect/test_screen_decisions.py sets it False to compare).
SCREEN = True
# Screen a fixed tuple of cycles (CycleIndex.through) in one compiled pass (amm/screen.py
# v2_verdicts): the same verdicts as one v2_verdict a cycle, at a fraction of the cost
# (tests/unit/detect/test_hot_path_decisions.py sets it False to compare).
FAST_SCREEN = True
# Settle a V3 victim's cycles whose marginal rate at x = 0 is surely at most 1 in one float pass
# (services/detect/rate_screen.py): the same decisions and counts as the general loop's exact
# test (tests/unit/detect/test_rate_screen.py sets it False to compare).
RATE_SCREEN = True


@dataclass(frozen=True)
class Found:
    """A sized, profitable cycle and the numbers that made it pass."""

    strategy: Strategy
    cycle: Cycle
    trade: CycleTrade
    gas: int
    max_fee: int

    @property
    def net_profit(self) -> int:
        return self.trade.profit - self.gas * self.max_fee


@dataclass
class SearchStats:
    searched: int = 0
    unprofitable: int = 0
    below_min_profit: int = 0
    outranked: int = 0  # never sized: a better one (or one sharing its pools) was proven first

    def add(self, other: SearchStats) -> None:
        """Count `other`'s search in these totals too."""
        self.searched += other.searched
        self.unprofitable += other.unprofitable
        self.below_min_profit += other.below_min_profit
        self.outranked += other.outranked


def search_steps(
    cycles: Iterable[Cycle],
    pools: Mapping[str, V2Pool | V3Pool],
    strategies: StrategiesSettings,
    base_fee: int,
    *,
    backrun: bool = False,
    priority_fee: int = DEFAULT_PRIORITY_FEE,
    victim_max_fee: int | None = None,
    max_input: int | None = None,
    stats: SearchStats | None = None,
    sliced: bool = False,
    until: Callable[[Found], bool] | None = None,
) -> Generator[None, None, list[Found]]:
    """Size the given cycles; keep those whose profit after gas meets the strategy's minimum.
    Best first, at most MAX_PER_TRIGGER; for a backrun only pool-disjoint ones (they all
    follow one victim: of two sharing a pool, only the first to land can succeed).

    Cheap filters first: the marginal rates (exact: the composed curve's A <= B) drop a cycle
    no input can profit on, and the profit bound drops one that cannot pay its gas and minimum.
    The rest are sized lazily, best bound first (`_select`): the result is the one sizing them
    all would give, but a cycle whose bound is below an exact profit already kept (for a
    backrun: one sharing a pool with it, so it could not be kept) is never sized. A cycle is
    counted `unprofitable` when no input profits, `below_min_profit` when its best (bounded)
    profit is under gas plus the minimum, `outranked` when it was never sized.

    A generator: `sliced` yields between units of work (a cycle read, filtered or sized) so
    a block's search can give way to pending swaps (services/detect/slicing.py); the pools
    must not change while it is paused. Unsliced it never yields (`search`).

    `until`: stop at the first result it accepts (a caller that takes only that one, e.g. a
    follow-on): the results up to it are the full search's, the rest are never sized
    (counted `outranked`)."""
    stats = stats if stats is not None else SearchStats()
    screening = SCREEN and max_input is None
    if screening and FAST_SCREEN and not sliced and isinstance(cycles, tuple):
        fees = (base_fee, priority_fee, victim_max_fee)
        fast = _compiled(cycles, pools, strategies, fees, backrun, stats)
        if fast is not None:
            kept = yield from _select(fast, backrun, max_input, stats, sliced, until)
            return at_victim_fees(kept, victim_max_fee, strategies)
        if RATE_SCREEN and (BACKRUN_THROUGH_V3 or not backrun):  # a V3 victim's cycles
            cycles = _rate_screened(cycles, pools, strategies, fees, backrun, stats)
    cycles = list(cycles)
    # one lookup per distinct pool: `pools` is often a ChainMap (post-swap over the registry),
    # whose lookups cost several times a dict's and were a third of a backrun's search
    local: dict[str, V2Pool | V3Pool] = {}
    # each V2 pool's float screen (amm/screen.py); none with a cap on the input (its verdicts
    # assume none)
    screen: dict[str, Rates | None] = {}
    missing = False
    for cycle in cycles:
        if sliced:
            yield
        for hop in cycle.hops:
            if hop.pool not in local:
                if (pool := pools.get(hop.pool)) is not None:
                    local[hop.pool] = pool
                    if screening and isinstance(pool, V2Pool):
                        screen[hop.pool] = pool_rates(pool)
                else:
                    missing = True
    # per cycle, only when needed: which of its pools are missing or V3 (usually none)
    each = missing or any(isinstance(pool, V3Pool) for pool in local.values())
    plans: dict[int, Plan | None] = {}  # by hop count: the strategy's name and limits
    rate_of: dict[tuple[str, str], Rate | None] = {}  # (pool, token in) -> rate at x = 0
    candidates: list[Candidate] = []
    if screening and not each and not sliced:  # V2 pools only: the backrun's usual case
        for n, one in {len(cycle.hops): cycle for cycle in cycles}.items():
            plans[n] = plan_for(strategy_for(one, backrun), n, strategies, base_fee, priority_fee,
                             victim_max_fee)  # fmt: skip
        needs = needed_by_hops(plans)
        verdicts = [
            v2_verdict(c.hops, screen, needs[n]) if (n := len(c.hops)) in needs else SKIP
            for c in cycles
        ]
        candidates = _count(v2_candidates(cycles, local, verdicts, plans, needs), stats)  # type: ignore[arg-type]
        cycles = []  # all taken
    for cycle in cycles:
        if sliced:
            yield
        hops = cycle.hops
        n = len(hops)
        plan = plans[n] if n in plans else plans.setdefault(
            n, plan_for(strategy_for(cycle, backrun), n, strategies, base_fee, priority_fee,
                     victim_max_fee)
        )  # fmt: skip
        if plan is None:
            continue
        v3_hops = 0
        if each:
            hop_pools = [local.get(hop.pool) for hop in hops]
            if None in hop_pools:
                continue
            v3_hops = sum(isinstance(pool, V3Pool) for pool in hop_pools)
            if v3_hops and backrun and not BACKRUN_THROUGH_V3:
                continue
        stats.searched += 1
        gas = plan.v2_gas if not v3_hops else gas_estimate(n, v3_hops)
        needed = gas * plan.max_fee + plan.min_profit
        path, legs = None, None
        if v3_hops:
            rates = [
                rate_of[key] if (key := (hop.pool, hop.token_in)) in rate_of
                else rate_of.setdefault(key, hop_rate(local[hop.pool], hop.token_in))
                for hop in hops
            ]  # fmt: skip
            if no_input_profits(rates):  # continuous_optimum's first test, cached per hop
                stats.unprofitable += 1
                continue
            legs = cycle_legs(cycle, local)
            # the unrounded optimum bounds the exact profit (slack: its virtual reserves floor)
            bound = continuous_optimum(legs, max_input)[1] + n + 1
        else:
            if screening and (verdict := v2_verdict(hops, screen, needed)):  # amm/screen.py
                if verdict == UNPROFITABLE:
                    stats.unprofitable += 1
                else:
                    stats.below_min_profit += 1
                continue
            path = cycle_reserves(cycle, local)  # type: ignore[arg-type]
            bound = profit_bound(path, max_input)  # 0 where no input can profit at all
        if bound < needed:
            if bound < 1 or (v3_hops and bound <= n + 1):
                stats.unprofitable += 1
            else:
                stats.below_min_profit += 1
            continue
        candidates.append(
            Candidate(bound - gas * plan.max_fee, len(candidates), plan.name, cycle, gas,
                       plan.max_fee, plan.min_profit, path, legs)
        )  # fmt: skip
    kept = yield from _select(candidates, backrun, max_input, stats, sliced, until)
    return at_victim_fees(kept, victim_max_fee, strategies)


search = one_pass(search_steps)  # the same, run to its end at once


def _compiled(
    cycles: tuple[Cycle, ...],
    pools: Mapping[str, V2Pool | V3Pool],
    strategies: StrategiesSettings,
    fees: Fees,
    backrun: bool,
    stats: SearchStats,
) -> list[Candidate] | None:
    """`v2_candidates` over a fixed tuple of V2 cycles screened in one compiled pass
    (services/detect/candidates.py), counted; None (nothing counted) when a pool is missing,
    not a V2 pair or has no screen: the general path decides those."""
    layout = layout_of(cycles, pools)
    flat = None if layout is None else flat_rates(layout, pools, pool_rates)
    if layout is None or flat is None:
        return None
    plans, needs = plans_for(strategies, backrun, fees, layout.lengths)
    verdicts = v2_verdicts(layout.compiled.legs, flat, needs)
    return _count(v2_candidates(cycles, pools, verdicts, plans, needs), stats)  # type: ignore[arg-type]


def _rate_screened(
    cycles: tuple[Cycle, ...],
    pools: Mapping[str, V2Pool | V3Pool],
    strategies: StrategiesSettings,
    fees: Fees,
    backrun: bool,
    stats: SearchStats,
) -> Sequence[Cycle]:
    """The cycles the general loop must still read: those the rate screen
    (services/detect/rate_screen.py) settles are counted searched and unprofitable, as the
    loop's `no_input_profits` test would count them (none, for a hop count no strategy takes:
    the loop skips those uncounted), and left out. All of them when it cannot screen."""
    layout = rate_layout(cycles, pools)
    screened = None if layout is None else screen(layout, pools)
    if layout is None or screened is None:
        return cycles
    left, settled = screened
    plans, _ = plans_for(strategies, backrun, fees, layout.lengths)
    counted = sum(k for n, k in settled.items() if plans[n] is not None)
    stats.searched += counted
    stats.unprofitable += counted
    return [cycles[i] for i in left]


def _count(found: tuple[list[Candidate], int, int, int], stats: SearchStats) -> list[Candidate]:
    """`v2_candidates`' candidates, its counts added to `stats`."""
    candidates, searched, unprofitable, below_min = found
    stats.searched += searched
    stats.unprofitable += unprofitable
    stats.below_min_profit += below_min
    return candidates


def _key(found: Found) -> tuple[int, tuple[str, ...]]:
    """The order results are ranked in: best net profit first, then by pools."""
    return -found.net_profit, found.cycle.pools


def _select(
    candidates: list[Candidate],
    backrun: bool,
    max_input: int | None,
    stats: SearchStats,
    sliced: bool,
    until: Callable[[Found], bool] | None = None,
) -> Generator[None, None, list[Found]]:
    """What sorting every sized candidate by `_key` and keeping (for a backrun) each one that
    shares no pool with a better one kept before, up to MAX_PER_TRIGGER, would keep; sizing a
    candidate only while its bound could still beat the best sized one still eligible."""
    pending = sorted(candidates, key=lambda c: (-c.net_bound, c.order))  # unsized, best first
    sized: list[Found] = []
    kept: list[Found] = []
    used: set[str] = set()
    while len(kept) < MAX_PER_TRIGGER and (pending or sized):
        best = min(sized, key=_key, default=None)
        # an exact tie with a bound is sized too: the pools break it
        if pending and (best is None or best.net_profit <= pending[0].net_bound):
            if sliced:
                yield
            found = _size(pending.pop(0), max_input, stats)
            if found is not None:
                sized.append(found)
            continue
        assert best is not None
        kept.append(best)
        sized.remove(best)
        if until is not None and until(best):
            break
        if backrun:  # of those sharing a pool with it, none can be kept: never size them
            used.update(best.cycle.pools)
            before = len(pending)
            pending = [c for c in pending if used.isdisjoint(c.cycle.pools)]
            stats.outranked += before - len(pending)
            sized = [f for f in sized if used.isdisjoint(f.cycle.pools)]
    stats.outranked += len(pending)
    return kept


def _size(candidate: Candidate, max_input: int | None, stats: SearchStats) -> Found | None:
    """The candidate sized exactly, or None (counted) if it does not pay its minimum."""
    if candidate.path is not None:
        trade = size_trade(candidate.path, max_input)
    else:
        trade = size_mixed(candidate.legs, max_input)
    if trade is None:
        stats.unprofitable += 1
        return None
    found = Found(candidate.strategy, candidate.cycle, trade, candidate.gas, candidate.max_fee)
    if found.net_profit < candidate.min_profit:
        stats.below_min_profit += 1
        return None
    return found


def block_search_cycles(
    index: CycleIndex, changed: Iterable[str], left_open: Iterable[Found]
) -> list[Cycle]:
    """The cycles a block's search prices: those through a pool the block changed, then each
    cycle the previous block's search found (at most MAX_PER_TRIGGER more). A gap we
    published but did not close (simulate dropped it, submit held a pool for an unsettled
    trade, the trade was replaced) stays open with none of its pools changing; searching only
    changed pools never saw it again (bench capture run: a 0.29 ETH cycle left 3 blocks).
    Only the found cycles come back, not every cycle through their pools: with V3 pools one
    pool is in hundreds of cycles, and a slower block search loses more than it finds."""
    cycles = index.touching(changed)
    seen = set(cycles)
    return cycles + [f.cycle for f in left_open if f.cycle not in seen]


def cycles_touching(index: CycleIndex, changed: Iterable[str]) -> list[Cycle]:
    return index.touching(changed)
