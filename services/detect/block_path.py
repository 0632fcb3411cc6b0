"""Detect's block trigger: a block's logs applied to the pool registry, then the cycles through
the pools it changed (and the ones the previous block's search found) searched and published.

A live block's search runs in slices (services/detect/slicing.py): pending swaps that arrive
right after a block (most of them: users react to the block) are handled between slices instead
of waiting behind the whole search. Nothing a pending swap does changes the registry, and the
next block waits for this one (the ordered reader handles one message at a time), so the
search reads the same pools whichever way it runs: the same opportunities. Blocks replayed
after a load run in one pass (not timed, and a live block may follow them meanwhile). The
`detect_block_search` hop is wall time: it includes the pending swaps handled in its pauses.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from mev_common import metrics
from mev_common.bus import Envelope
from mev_common.messages import Block, Opportunity

from services.detect.opportunity import to_opportunity
from services.detect.registry import RewindTooDeep
from services.detect.search import (
    SearchStats,
    block_search_cycles,
    search_steps,
)
from services.detect.slicing import finish, run_sliced

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
        return  # already in the snapshot
    if block.first_number > registry.block_number + 1 and not block.reorg:
        log.warning(
            "gap in the block stream: reloading",
            extra={"fields": {"have": registry.block_number, "got": block.number}},
        )
        await det.load()
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
    if len(registry.pools) != known:
        det.rebuild_index()
    det.head = block
    det.pending.on_block(block.number, mined := {log.tx_hash for log in block.logs})
    if det.peers is not None:
        det.peers.on_block(block.number, mined)
    all_pools = registry.all_pools
    stats = SearchStats()  # its own: pending searches run (and count) while this one pauses
    steps = search_steps(
        block_search_cycles(det.index, changed, det.left_open),
        all_pools,
        det.strategies,
        block.base_fee_per_gas,
        stats=stats,
        priority_fee=det.rt.settings.submit.priority_fee,
        sliced=(slice_s := det.block_slice_s if live else None) is not None,
    )
    found = await run_sliced(steps, slice_s) if slice_s is not None else finish(steps)
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


def book_block_trades(det: Detector, opportunities: list[Opportunity]) -> list[Opportunity]:
    """A block trade is proven on the block's end state and bids `submit.priority_fee`; a
    pending swap through one of its pools tipping at least that much is mined before it, so it
    would meet another state and revert (on a flow of swaps sent right after each block, 84 of
    197 block trades did). Those already pending drop it (`block_crowded`: the swap's own
    backrun takes the gap on the state it leaves); the rest are booked like backruns, so a swap
    seen later withdraws them (`backrun_withdrawn`: submit then never sends, or cancels)."""
    tip, kept = det.rt.settings.submit.priority_fee, []
    for opp in opportunities:
        pools = [hop.pool for hop in opp.hops]
        if det.pending.crowded("", tip, pools) is not None:
            metrics.OPPORTUNITIES_DROPPED.labels(reason="block_crowded").inc()
            continue
        det.pending.published(opp.id, "", tip, pools, opp.block_number)
        kept.append(opp)
    return kept
