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

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mev_common.amm.cycles import Cycle, CycleIndex, cycle_reserves, may_profit
from mev_common.amm.legs import cycle_legs
from mev_common.amm.mixed_sizing import continuous_optimum, size_mixed
from mev_common.amm.sizing import CycleTrade, profit_bound, size_trade
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.messages import Block, Hop, Opportunity, PendingTx
from mev_common.settings import StrategiesSettings, StrategySettings

# Executor gas measured on anvil (docs/DEVNET.md): ~171k for 2 hops, ~89k per extra hop, flash
# ~+10k. The estimate errs high so a trade that pays here pays on chain.
GAS_BASE = 10_000
GAS_PER_HOP = 90_000
# A V3 hop: the pool's swap, its callback and transfer (~110k on anvil), plus a margin for the
# initialized ticks it crosses (~20-30k each); simulate measures the real figure before a send.
GAS_PER_V3_HOP = 160_000
DEFAULT_PRIORITY_FEE = 10**9
MAX_PER_TRIGGER = 5
# Default staleness: after this many blocks the state has moved on (detect.deadline_blocks).
DEADLINE_BLOCKS = 2


# A backrun lands right behind its victim, so it is safe only if no other pending swap with at
# least the victim's tip goes through its pools first (PendingBook's crowding check). Pending
# SwapRouter (V3) swaps are not decoded yet, so a backrun through a V3 pool cannot see them:
# backruns stay on V2 pairs until they are. Block-triggered cycles (our tip first in the next
# block, on the state we sized on) use V3 pools freely.
BACKRUN_THROUGH_V3 = False


def gas_estimate(hops: int, v3_hops: int = 0) -> int:
    """`hops` in all, `v3_hops` of them through V3 pools."""
    return GAS_BASE + GAS_PER_HOP * (hops - v3_hops) + GAS_PER_V3_HOP * v3_hops


def max_fee_per_gas(base_fee: int, priority_fee: int, cap: int) -> int:
    """What we would bid at most: two base fees (survives a few full blocks) plus the tip,
    never above the strategy's `max_gas_price`."""
    return min(cap, 2 * base_fee + priority_fee)


def strategy_for(cycle: Cycle, backrun: bool) -> str:
    if backrun:
        return "backrun"
    return "cross_dex_arbitrage" if len(cycle.hops) == 2 else "cyclic_arbitrage"


@dataclass(frozen=True)
class Found:
    """A sized, profitable cycle and the numbers that made it pass."""

    strategy: str
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


def search(
    cycles: Iterable[Cycle],
    pools: Mapping[str, V2Pool | V3Pool],
    strategies: StrategiesSettings,
    base_fee: int,
    *,
    backrun: bool = False,
    priority_fee: int = DEFAULT_PRIORITY_FEE,
    max_input: int | None = None,
    stats: SearchStats | None = None,
) -> list[Found]:
    """Size every given cycle; keep those whose profit after gas meets the strategy's minimum.
    Best first, at most MAX_PER_TRIGGER; for a backrun only pool-disjoint ones (they all
    follow one victim: of two sharing a pool, only the first to land can succeed).

    Cheap filters first: `may_profit` (marginal rates, exact) drops a cycle no input can
    profit on, and the profit bound drops one that cannot pay its gas and minimum; only the
    rest are sized. A cycle is counted `unprofitable` when no input profits and
    `below_min_profit` when its best (bounded) profit is under gas plus the minimum."""
    stats = stats if stats is not None else SearchStats()
    found: list[Found] = []
    cycles = list(cycles)
    # one lookup per distinct pool: `pools` is often a ChainMap (post-swap over the registry),
    # whose lookups cost several times a dict's and were a third of a backrun's search
    local: dict[str, V2Pool | V3Pool] = {}
    for cycle in cycles:
        for hop in cycle.hops:
            if hop.pool not in local and (pool := pools.get(hop.pool)) is not None:
                local[hop.pool] = pool
    for cycle in cycles:
        name = strategy_for(cycle, backrun)
        cfg: StrategySettings | None = getattr(strategies, name)
        if cfg is None or not cfg.enabled or len(cycle.hops) > cfg.max_hops:
            continue
        if any(hop.pool not in local for hop in cycle.hops):
            continue
        v3_hops = sum(isinstance(local[hop.pool], V3Pool) for hop in cycle.hops)
        if backrun and v3_hops and not BACKRUN_THROUGH_V3:
            continue
        stats.searched += 1
        if not v3_hops and not may_profit(cycle, local):  # type: ignore[arg-type]
            stats.unprofitable += 1
            continue
        gas = gas_estimate(len(cycle.hops), v3_hops)
        max_fee = max_fee_per_gas(base_fee, priority_fee, cfg.max_gas_price)
        needed = gas * max_fee + max(cfg.min_profit, 1)
        if v3_hops:
            legs = cycle_legs(cycle, local)
            # the unrounded optimum bounds the exact profit (slack: its virtual reserves floor)
            bound = continuous_optimum(legs, max_input)[1] + len(legs) + 1
        else:
            path = cycle_reserves(cycle, local)  # type: ignore[arg-type]
            bound = profit_bound(path, max_input)
        if bound < needed:
            if bound < 1 or (v3_hops and bound <= len(cycle.hops) + 1):
                stats.unprofitable += 1
            else:
                stats.below_min_profit += 1
            continue
        trade = size_mixed(legs, max_input) if v3_hops else size_trade(path, max_input)
        if trade is None:
            stats.unprofitable += 1
            continue
        candidate = Found(name, cycle, trade, gas, max_fee)
        if candidate.net_profit < max(cfg.min_profit, 1):
            stats.below_min_profit += 1
            continue
        found.append(candidate)
    found.sort(key=lambda f: (-f.net_profit, f.cycle.pools))
    if backrun:
        found = _pool_disjoint(found)
    return found[:MAX_PER_TRIGGER]


def _pool_disjoint(found: list[Found]) -> list[Found]:
    """Best first, each sharing no pool with a better one kept before it."""
    kept: list[Found] = []
    used: set[str] = set()
    for f in found:
        if used.isdisjoint(f.cycle.pools):
            kept.append(f)
            used.update(f.cycle.pools)
    return kept


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


def opportunity_id(strategy: str, trigger: str, block_hash: str, cycle: Cycle) -> str:
    """Deterministic: a redelivered trigger yields the same id, which JetStream dedups."""
    key = "|".join([strategy, trigger, block_hash, *(f"{h.pool}:{h.token_in}" for h in cycle.hops)])
    return f"{strategy}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def to_opportunity(
    found: Found,
    pools: Mapping[str, V2Pool | V3Pool],
    block: Block,
    trigger: str,
    victim: PendingTx | None = None,
    deadline_blocks: int = DEADLINE_BLOCKS,
) -> Opportunity:
    hops = []
    amount = found.trade.amount_in
    for hop, out in zip(found.cycle.hops, found.trade.amounts_out, strict=True):
        pool = pools[hop.pool]
        hops.append(
            Hop(
                kind="v3" if isinstance(pool, V3Pool) else "v2",
                pool=hop.pool,
                token_in=hop.token_in,
                token_out=hop.token_out,
                fee_bps=pool.fee // 100 if isinstance(pool, V3Pool) else pool.fee_bps,
                amount_in=amount,
                amount_out=out,
            )
        )
        amount = out
    return Opportunity(
        id=opportunity_id(found.strategy, trigger, block.hash, found.cycle),
        chain_id=block.chain_id,
        strategy=found.strategy,
        trigger=trigger,
        block_number=block.number,
        block_hash=block.hash,
        hops=hops,
        amount_in=found.trade.amount_in,
        profit_token=found.cycle.start_token,
        expected_profit=found.trade.profit,
        net_profit_wei=found.net_profit,
        gas_estimate=found.gas,
        max_fee_per_gas=found.max_fee,
        deadline_block=block.number + deadline_blocks,
        victim=victim,
    )
