"""Detect's pending-swap trigger: decode, book, search the cycles through the pools the swap
moves on their post-swap state (a backrun), drop the crowded ones, publish the rest.

Why apart from service.py: the Detector holds the state and the adapters; this is the one path
a pending swap takes through them (as block_path.py is a block's), kept readable in one place.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

from mev_common import metrics
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.bus import Envelope, Permanent
from mev_common.chain.router_calls import RouterCallError
from mev_common.chain.swap_router_calls import SwapRouterCallError
from mev_common.messages import PendingTx

from services.detect.feed_gap import skip
from services.detect.follow_on import follow_ons
from services.detect.opportunity import to_opportunity
from services.detect.pending_order import with_ahead
from services.detect.pending_swaps import decode_pending

if TYPE_CHECKING:
    from services.detect.service import Detector


async def on_pending(det: Detector, env: Envelope[PendingTx]) -> None:
    """One pending swap, from the mempool consumer (its replica's share)."""
    tx, head = env.message, det.head
    det.pending_arrive.observe(max(0.0, (time.time_ns() - env.seen_ns) / 1e9))
    det.feed.on_pending(env.deliveries)
    try:
        swap = decode_pending(det, tx)
    except (RouterCallError, SwapRouterCallError) as exc:  # a swap that does not decode
        raise Permanent(f"undecodable router call: {exc}") from exc
    if swap is None or head is None or not det.loaded:
        if swap is not None:  # acked unbooked: booked after the load (feed_gap.py)
            skip(det, tx)
        det.processed.inc()
        return
    if det.peers is not None:  # the swaps before this one in the stream, booked
        await det.peers.reach(env.seq)
    applied, tip = await det.book(tx, swap, head, env.seq)
    if applied is None:  # the victim would revert: nothing to backrun
        det.processed.inc()
        return
    # the pools the search reads, in one plain dict (a ChainMap's lookups cost ~1 µs each)
    changed, head_pools, v3_pools = applied.pools, det.registry.pools, det.registry.v3.pools
    index = det.index if swap.v3 is not None else det.backrun_index
    post: dict[str, V2Pool | V3Pool] = {}
    for a in index.pools_touching(changed):
        if (pool := changed.get(a) or head_pools.get(a) or v3_pools.get(a)) is not None:
            post[a] = pool
    found = det.search(
        index.through(applied.pools),
        post,
        det.strategies,
        head.base_fee_per_gas,
        backrun=True,
        priority_fee=tip,
        victim_max_fee=tx.fee_cap,  # a backrun bids its victim's fees (submit/fees.py)
    )
    clear, outbid = [], 0
    queued = det.pending.queued_behind(tx.hash, tx.sender, tx.nonce)
    stacking = det.rt.settings.simulate.stack_depth > 0  # services/simulate/stacking.py
    ahead = det.pending.queued_txs(tx.hash, tx.sender, tx.nonce) if queued and stacking else []
    queued = None if ahead else queued  # behind its sender's swaps we hold whole
    for f in found:
        crowded = await det.is_crowded(tx.hash, tip, f.cycle.pools, stacking, env.seq)
        if queued is None and crowded is None:
            clear.append(f)
        else:
            det.crowded += 1
            reason = "backrun_victim_queued" if queued else "backrun_crowded"
            metrics.OPPORTUNITIES_DROPPED.labels(reason=reason).inc()
    clear = det.feed.hold(clear)  # the book may miss a swap ahead (feed_gap.py)
    opportunities = [to_opportunity(f, post, head, tx.hash, tx, det.deadline_blocks) for f in clear]
    if stacking and clear and det.rt.settings.detect.follow_on:  # follow_on.py
        again = partial(det.search, strategies=det.strategies, backrun=True,
                        base_fee=head.base_fee_per_gas,
                        priority_fee=tip, victim_max_fee=tx.fee_cap)  # fmt: skip
        depth = det.rt.settings.simulate.stack_depth
        taken = [f.cycle for f in clear]
        behind = opportunities[0].id  # each follow-on is sized on the one before
        for more, pools in follow_ons(clear[0], post, index, head_pools, again, depth, taken):
            if await det.is_crowded(tx.hash, tip, more.cycle.pools, stacking, env.seq):
                break  # the ones after it are sized on it
            clear.append(more)
            opp = to_opportunity(more, pools, head, tx.hash, tx, det.deadline_blocks, behind)
            opportunities.append(opp)
            behind = opp.id
    if stacking:  # what the chain mines before the victim: simulate runs it first
        crowd = det.pending.crowders
        kept = [(f, with_ahead(o, ahead or [], crowd(tx.hash, tip, f.cycle.pools)))
                for f, o in zip(clear, opportunities, strict=True)]  # fmt: skip
        clear = [f for f, o in kept if o is not None]
        opportunities = [o for _, o in kept if o is not None]
    if det.peers is not None:  # one detect would publish these, then withdraw them
        clear, opportunities, outbid = det.peers.unpublished(
            tx.hash, env.seq, tip, head.number, clear, opportunities
        )
    # claim before the publish awaits: a swap handled meanwhile must see these backruns
    for f, opp in zip(clear, opportunities, strict=True):
        det.pending.published(opp.id, tx.hash, tip, f.cycle.pools, head.number, seq=env.seq)
    det.pending_with_opportunity += bool(opportunities or outbid)
    if outbid:
        det.withdrawn += outbid
        det.withdrawn_metric.inc(outbid)
    await det.publish(opportunities, env, "pending")
