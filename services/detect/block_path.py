"""Detect's block trigger: a block's logs applied to the pool registry, then the cycles through
the pools it changed (and the ones the previous block's search found) searched and published.

A live block's search runs in slices (services/detect/slicing.py): pending swaps that arrive
right after a block (most of them: users react to the block) are handled between slices instead
of waiting behind the whole search. The block's logs are applied in one piece; then the pending
swaps already queued go first (on the block's state), and the search's cycles are picked inside
its first slice, not before it (~0.7 ms held on ~1,900 cycles: bench/block_slices.py). Nothing
a pending swap does changes the registry, and the next block waits for this one (the ordered
reader handles one message at a time), so the search reads the same pools whichever way it
runs: the same opportunities. Blocks replayed after a load run in one pass (not timed, and a
live block may follow them meanwhile). The `detect_block_search` hop is wall time: it includes
the pending swaps handled in its pauses. A block that adds a pool rebuilds the indexes first,
in slices too when live (services/detect/index_steps.py), after the head and the pending book
moved to the block.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from mev_common import metrics
from mev_common.amm.backrun import apply_router_swap
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.bus import Envelope
from mev_common.chain.router_calls import RouterCallError
from mev_common.chain.swap_router_calls import SwapRouterCallError
from mev_common.messages import Block, Opportunity, PendingTx

from services.detect import index_steps, slicing
from services.detect.gap import check_book, reload_after_gap
from services.detect.opportunity import to_opportunity
from services.detect.pending_book import Survives
from services.detect.pending_swaps import PendingSwap, decode_pending, path_pools
from services.detect.registry import PairView, RewindTooDeep
from services.detect.reprice import (
    Pool,
    Replay,
    Trade,
    Unknown,
    min_profit_bound,
    survives,
    trade_of,
)
from services.detect.search import (
    Found,
    SearchStats,
    block_search_cycles,
    search_steps,
)
from services.detect.slicing import Steps, finish, run_sliced

if TYPE_CHECKING:
    from services.detect.service import Detector

log = logging.getLogger("mev.detect")


async def on_block(det: Detector, env: Envelope[Block], live: bool) -> None:
    """`live` is False for blocks replayed after a (re)load: they are not timed."""
    if not det.loaded:
        det.buffer.append(env)
        return
    block, arrived = env.message, time.time_ns()
    registry = det.registry
    if block.number <= registry.block_number and not block.reorg:
        if block.number == registry.block_number and block.hash == registry.block_hash:
            det.head = block  # the snapshot's own block: our head (base fee, time) until the next
            det.head_seen_s = env.seen_ns / 1e9
        return  # already in the snapshot
    if block.first_number > registry.block_number + 1 and not block.reorg:
        log.warning(
            "gap in the block stream: reloading",
            extra={"fields": {"have": registry.block_number, "got": block.number}},
        )
        await reload_after_gap(det, block, env.seen_ns)  # and forget the swaps the gap mined
        return
    known, skipped = len(registry.pools), registry.skipped_logs
    try:
        changed = registry.apply_block(block)
    except RewindTooDeep as exc:
        log.warning("deep reorg: reloading", extra={"fields": {"error": str(exc)}})
        await det.load()
        return
    if registry.skipped_logs > skipped:
        metrics.ERRORS.labels(kind="bad_log").inc(registry.skipped_logs - skipped)
    det.head, det.head_seen_s = block, env.seen_ns / 1e9
    det.pending.on_block(block.number, mined := {log.tx_hash for log in block.logs})
    if det.peers is not None:
        det.peers.on_block(block.number, mined)
    if live and det.recheck:  # the first live block after a (re)load: services/detect/gap.py
        det.recheck = False
        det.checks.add(check := asyncio.ensure_future(check_book(det)))
        check.add_done_callback(det.checks.discard)
    if len(registry.pools) != known:  # sliced when live, pending swaps served between slices
        await index_steps.rebuild(det, det.block_slice_s if live else None)
    all_pools = registry.all_pools
    stats = SearchStats()  # its own: pending searches run (and count) while this one pauses
    slice_s = det.block_slice_s if live else None
    steps = block_search(det, changed, block.base_fee_per_gas, stats, slice_s is not None)
    if slice_s is not None:
        # the block is applied whole: the pending swaps queued meanwhile go first, on its state
        await slicing.yield_to_others()
        found = await run_sliced(steps, slice_s)
    else:
        found = finish(steps)
    det.count_search(stats)
    det.left_open = found
    if live:
        det.block_hops[0].observe(max(0.0, (arrived - env.seen_ns) / 1e9))
        det.block_hops[1].observe((time.time_ns() - arrived) / 1e9)
        # what the block's users left behind that no trade of ours took
        residual = max((f.net_profit for f in found), default=0)
        metrics.RESIDUAL_WEI.set(residual)
        metrics.RESIDUAL_WEI_TOTAL.inc(residual)
    opportunities = [
        to_opportunity(f, all_pools, block, block.hash, None, det.deadline_blocks) for f in found
    ]
    if live:
        opportunities = book_block_trades(det, opportunities)
    await det.publish(opportunities, env, "block" if live else None)


def block_search(
    det: Detector, changed: set[str], base_fee: int, stats: SearchStats, sliced: bool
) -> Steps[list[Found]]:
    """The block's search as steps: its cycles are picked inside the first slice, and a last
    step after the search lets `run_sliced` pause before the opportunities are built, booked
    and published (else the last slice ran on through them: ~1 ms held)."""
    cycles = block_search_cycles(det.index, changed, det.left_open)
    found = yield from search_steps(
        cycles,
        det.registry.all_pools,
        det.strategies,
        base_fee,
        stats=stats,
        priority_fee=det.rt.settings.submit.priority_fee,
        sliced=sliced,
    )
    if sliced:
        yield
    return found


def book_block_trades(det: Detector, opportunities: list[Opportunity]) -> list[Opportunity]:
    """A block trade is proven on the block's end state and bids `submit.priority_fee`; a
    pending swap through one of its pools tipping at least that much is mined before it, so it
    meets the state that swap leaves (on a flow of swaps sent right after each block, 84 of 197
    block trades reverted there). It is re-priced on that state (services/detect/reprice.py):
    if it no longer pays its minProfit behind the swaps already pending, it is dropped
    (`block_crowded`: the swap's own backrun takes the gap on the state it leaves); the rest
    are booked like backruns, so a swap seen later that leaves it short withdraws it
    (`backrun_withdrawn`: submit then never sends, or cancels)."""
    tip, kept = det.rt.settings.submit.priority_fee, []
    pools, replay = det.registry.all_pools, replayer(det)
    for opp in det.feed.hold(opportunities):  # the book may miss a swap: feed_gap.py
        pays: Survives | None = None
        if all(hop.pool in pools for hop in opp.hops):  # else: any swap ahead dooms it
            strategy = getattr(det.rt.settings.strategies, opp.strategy, None)
            trade = trade_of(opp, pools, min_profit_bound(opp, strategy))
            pays = partial(reprice, det, trade, replay)
        ahead = det.pending.ahead_of("", tip, [hop.pool for hop in opp.hops])
        if ahead and (pays is None or not pays(ahead)):
            metrics.OPPORTUNITIES_DROPPED.labels(reason="block_crowded").inc()
            continue
        det.pending.published(opp.id, "", tip, [h.pool for h in opp.hops], opp.block_number, pays)
        kept.append(opp)
    return kept


def reprice(
    det: Detector, trade: Trade, replay: Replay, ahead: Sequence[tuple[int, str, PendingTx | None]]
) -> bool:
    """`survives` behind the swaps ahead that go through the trade's pools: the book's swaps
    with no pools (they revert on the head state) only if their path takes one of them."""
    return survives(trade, [c for c in ahead if touches(det, c[2], trade.pools)], replay)


def touches(det: Detector, tx: PendingTx | None, pools: frozenset[str]) -> bool:
    """Whether a pending swap's path runs through one of `pools` (True when it is not held
    whole: survives then gives the trade up)."""
    if tx is None:
        return True
    try:
        swap = decode_pending(det, tx)
    except (RouterCallError, SwapRouterCallError):
        return False  # not a swap: detect never books one
    return swap is not None and not pools.isdisjoint(path_pools(det, swap))


def replayer(det: Detector) -> Replay:
    """A pending swap replayed on a trade's pools, as detect applies a victim (pending_swaps.
    py), landing in the next block. Unknown unless every pool of its path is one of the
    trade's: its amounts would depend on pools other swaps may move first. Decoded once per
    tx (a trade is re-priced behind the same swaps again as more arrive)."""
    head = det.head
    lands_at = None if head is None else head.timestamp + int(det.rt.settings.chain.block_time_s)
    decoded: dict[str, tuple[PendingSwap, frozenset[str]]] = {}

    def decode(tx: PendingTx) -> tuple[PendingSwap, frozenset[str]]:
        if tx.hash not in decoded:
            try:
                swap = decode_pending(det, tx)
            except (RouterCallError, SwapRouterCallError) as exc:
                raise Unknown(str(exc)) from exc
            if swap is None:
                raise Unknown("not a swap we follow")
            path = path_pools(det, swap)
            hops = len(swap.v3[1].fees) if swap.v3 is not None else len(swap.swap.path) - 1  # type: ignore[union-attr]
            if len(path) != hops:
                raise Unknown("a pool of its path is not one of ours")
            decoded[tx.hash] = swap, frozenset(path)
        return decoded[tx.hash]

    def replay(tx: PendingTx, state: Mapping[str, Pool]) -> Mapping[str, Pool] | None:
        if lands_at is None:
            raise Unknown("no head block yet")
        swap, path = decode(tx)
        if not path <= state.keys():
            raise Unknown("a pool of its path is not the trade's")
        if swap.v3 is not None:
            v3 = {a: p for a, p in state.items() if isinstance(p, V3Pool)}
            applied = det.v3_routers.apply(*swap.v3, v3, lands_at)
        else:
            assert swap.dex is not None and swap.swap is not None
            v2 = {a: p for a, p in state.items() if isinstance(p, V2Pool)}
            pairs = PairView(det.pair_index.get(swap.dex.name, {}), v2)
            applied = apply_router_swap(
                swap.swap, pairs, swap.dex.fee_bps, timestamp=lands_at, weth=det.contracts.weth
            )
        return None if applied is None else {**state, **applied.pools}

    return replay
