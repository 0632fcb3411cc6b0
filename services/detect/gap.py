"""Detect's pending book after a gap in the block stream.

A pending swap leaves the book when its Sync/Swap logs show up in a block detect receives. When
blocks are missed (the next block is not the one after ours: ingest restarted on a NATS that
lost its store, a stream that dropped messages, the first block after any restart of the
reader), the swaps those blocks mined stayed in the book, up to `max_age_blocks` more: detect
then handed them to simulate as txs mined ahead of a later victim (`Opportunity.ahead`: its
sender's lower nonces, or the crowders of a stacked backrun) and dropped backruns they
"crowded" or "queued" although they were already on chain.

Which swaps to forget: those whose nonce their sender has used at the head (one
`eth_getTransactionCount` per sender, in one JSON-RPC batch right after the pool reload the
gap triggers anyway: detect judges no pending swap while it reloads, and one round trip more).
The rule is exact both ways. A tx below its sender's count was mined, or another tx of that nonce
was, and can never be mined again; a tx at or above it is still pending. The cheaper rule,
forgetting every swap seen before the gap, would also forget the swaps still pending, and
those are what keep a backrun safe: a forgotten swap tipping more through our pools lands
ahead of a backrun published as uncrowded (it reverts: gas lost), and a victim's forgotten
lower nonce puts the victim later in the block than its tip says (our trade could land before
it). So when the nonces cannot be read (the RPC fails, or the call budget has no room for
them), the book is left as it was: a swap mined meanwhile then only costs candidates (crowded,
queued) until it ages out, and simulate leaves a known tx whose nonce the head has used out of
its plan (services/simulate/stacking.py `nonce_at_head`). A gap longer than `max_age_blocks`
ages every swap seen before it out anyway (the book's age rule): the nonces decide for the
shorter ones, which the age rule kept whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_blocks import rpc_int
from mev_common.chain.rpc_pool import RpcPool
from mev_common.messages import Block

from services.detect.feed_gap import book_skipped

if TYPE_CHECKING:
    from services.detect.service import Detector

log = logging.getLogger("mev.detect")
BUDGET_KEEP_FREE = 0.2  # of the call budget, left for what cannot wait (as ingest's polls)
NONCES_TIMEOUT_S = 2.0  # detect skips pending swaps while it waits: a slow node is given up


async def head_nonces(rpc: RpcPool, senders: Sequence[str]) -> dict[str, int] | None:
    """Each sender's transaction count at the head, in one batch; None when the budget has no
    room for them or the batch failed. A sender whose own entry failed is left out."""
    if not senders:
        return {}
    if not budget.process_budget().allows(len(senders), keep_free=BUDGET_KEEP_FREE):
        metrics.RPC_BUDGET_SKIPS.labels(what="detect_gap_nonces").inc()
        return None
    try:
        replies = await rpc.call_batch(
            [("eth_getTransactionCount", [s, "latest"]) for s in senders], chunk=len(senders)
        )
    except RpcError as exc:
        metrics.ERRORS.labels(kind="detect_gap_nonces").inc()
        log.warning("gap: nonces unread", extra={"fields": {"error": str(exc)}})
        return None
    pairs = zip(senders, replies, strict=True)
    return {s: rpc_int(r) for s, r in pairs if not isinstance(r, RpcError)}


async def reload_after_gap(det: Detector, block: Block, seen_ns: int = 0) -> None:
    """Reload the pools at the head (what the gap path did already), forget the pending swaps
    the missed blocks mined, then take `block` (the snapshot's or an older one) as a block
    seen: its own mined swaps and aged entries leave the book, our head is set when the
    snapshot is at it. The nonces are read after the snapshot, so they cover every block it
    holds (a block mined during the reload is in the snapshot, and its logs never come to
    the book); detect stays unloaded (pending swaps skipped, as during the reload) until the
    book is checked, so none is judged on swaps already mined; the swaps skipped meanwhile
    are booked after it (feed_gap.py `book_skipped`), and the next live block checks them."""
    await det.load()
    loaded, det.loaded = det.loaded, False
    senders = book_senders(det)
    try:
        counts = await asyncio.wait_for(head_nonces(det.rpc, senders), NONCES_TIMEOUT_S)
    except TimeoutError:
        metrics.ERRORS.labels(kind="detect_gap_nonces").inc()
        counts = None
    finally:
        det.loaded = loaded
    forgotten = forget_mined(det, counts)
    mined = {lg.tx_hash for lg in block.logs}
    det.pending.on_block(block.number, mined)
    if det.peers is not None:
        det.peers.on_block(block.number, mined)
    registry = det.registry
    if registry.block_number == block.number and registry.block_hash == block.hash:
        det.head, det.head_seen_s = block, seen_ns / 1e9
    await book_skipped(det)  # the swaps that came during the nonce read (the load's: booked)
    det.recheck = True  # swaps delivered after the snapshot may be mined inside it
    checked("gap", senders, counts, forgotten)


async def check_book(det: Detector) -> None:
    """The same check once at the first live block after a (re)load, in the background (the
    block's search does not wait): a swap booked since may have been mined in a block the
    snapshot holds, whose logs the book never sees (a restarted detect is handed the swaps its
    last run left unacked by the shared consumer). Counts read later only forget more: a nonce
    the head has used stays used."""
    senders = book_senders(det)
    counts = await head_nonces(det.rpc, senders)
    checked("first block after a (re)load", senders, counts, forget_mined(det, counts))


def book_senders(det: Detector) -> list[str]:
    """The senders of the book's swaps and of a replica's read-ahead, with a known nonce."""
    queue = (det.peers.ahead.queue or ()) if det.peers is not None else ()
    return sorted(set(det.pending.senders()) | {s.sender for s in queue if s.nonce >= 0})


def forget_mined(det: Detector, counts: dict[str, int] | None) -> int:
    """Forget, in the book and a replica's read-ahead, the swaps below their sender's count."""
    if not counts:
        return 0
    forgotten = len(det.pending.forget_mined(counts))
    if det.peers is not None:
        read = det.peers.ahead.queue or ()
        gone = {s.tx_hash for s in read if 0 <= s.nonce < counts.get(s.sender, 0)}
        forgotten += det.peers.ahead.drop(gone, 0)
    return forgotten


def checked(why: str, senders: list[str], counts: dict[str, int] | None, forgotten: int) -> None:
    fields = {"why": why, "senders": len(senders), "read": counts is not None}
    log.info("pending book checked", extra={"fields": {**fields, "forgotten": forgotten}})
