"""Submit's chain view from ingest's block stream, under an RPC call budget (HyperEVM).

Without a budget submit reads the head over RPC a quarter block apart and takes each block
message's head, hash and base fee at once (`hint_heads`), whichever is newer. Under
HyperEVM's ~100 calls a minute that poll alone (240 a minute) is over budget, so submit
follows `mev.<chain>.blocks` instead: the head and its base fee for the gate, the canonical
hashes for the stale check, and whether one of our unresolved txs has logs in the message (then
a tracking pass reads the nonce and the receipts of what it shows mined). Money is still
settled only from the chain's receipts. While txs are unresolved a pass also runs every
`fallback_s` (a reverted trade has no logs), and a pass is skipped when the budget is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mev_common import metrics
from mev_common.bus import Envelope
from mev_common.chain import budget
from mev_common.chain.jsonrpc import RpcError
from mev_common.messages import Block

from services.submit.budget_room import may_track

if TYPE_CHECKING:
    from mev_common.stage import Stage

    from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")


@dataclass
class TrackTrigger:
    """Pure: when a tracking pass is worth its calls."""

    fallback_s: float = 6.0
    clock: Callable[[], float] = time.monotonic
    last_pass: float = field(default=0.0)
    due: bool = False

    def on_block(self, block: Block, unresolved: set[str]) -> bool:
        """True when `block` carries a log of one of our unresolved txs (lower-case hashes)."""
        if unresolved and any(lg.tx_hash.lower() in unresolved for lg in block.logs):
            self.due = True
        return self.due

    def should_track(self, unresolved: int) -> bool:
        if unresolved == 0:
            self.due = False
            return False
        return self.due or self.clock() - self.last_pass >= self.fallback_s

    def tracked(self) -> None:
        self.due, self.last_pass = False, self.clock()


def saw_block(submitter: Submitter, block: Block) -> bool:
    """The head, its base fee and its canonical hash from a block message (reorgs included),
    so the bundles proven on it pass the gate's head and hash checks with no RPC call. True
    when its logs show one of our unresolved txs (a tracking pass should run now)."""
    submitter.on_streamed_block(block)  # bounded: chain_view.py, head_guard.py
    if not block.logs:
        return False
    unresolved = {t.hash.lower() for t in submitter.ledger.unresolved()}
    return bool(unresolved) and any(lg.tx_hash.lower() in unresolved for lg in block.logs)


async def hint_heads(stage: Stage, submitter: Submitter) -> None:
    """Without a budget: the head from each block message at once (`saw_block`), and a
    tracking pass woken when it shows a trade of ours. Before, the head came only from RPC
    reads: the quarter-block poll let a bundle proven on block N through the gate after N + 1
    was mined (h61: a block trade of bench scenario 3's bursts, sent ~0.2 s after its next
    block, reverted), and then a read on each message still cost the bundles of a new block an
    RPC round trip whenever they came first. The stream is ingest's (a permissioned publisher,
    as under a budget, `follow_blocks`); a message can only raise the head (the gate then
    refuses more), no further than the chain's confirmed head allows (a forged high number
    would refuse every bundle: head_guard.py), and a hash it gives is checked against the
    bundle's, a mismatch read from the chain (`stale.BlockHashes`). The quarter-block RPC
    poll goes on (loops.track_loop)."""

    async def on_block(env: Envelope[Block]) -> None:
        if saw_block(submitter, env.message):
            submitter.track_wake.set()

    await stage.follow_blocks(on_block)  # from the newest block; closed with the stage


async def follow_blocks(stage: Stage, submitter: Submitter) -> None:
    """Head and tracking from the block stream until the stage stops (replaces the RPC poll)."""
    rt = stage.rt
    trigger = TrackTrigger()
    wake = asyncio.Event()
    submitter.head_max_age_s = max(10.0, 10 * rt.settings.chain.block_time_s)

    async def on_block(env: Envelope[Block]) -> None:
        block = env.message
        if submitter.on_streamed_block(block):  # bounded: chain_view.py, head_guard.py
            submitter.production.saw(block.number, block.produced_at_ns)
        unresolved = {t.hash.lower() for t in submitter.ledger.unresolved()}
        if trigger.on_block(block, unresolved):
            wake.set()

    await stage.follow_blocks(on_block)  # from the newest block; closed with the stage
    while not rt.stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=1.0)
        wake.clear()
        if not trigger.should_track(len(submitter.ledger.unresolved())):
            continue
        if not may_track(budget.process_budget()):  # sends leave it room (budget_room)
            metrics.RPC_BUDGET_SKIPS.labels(what="submit_track").inc()
            continue
        try:
            await submitter.track_once()
            trigger.tracked()
        except RpcError as exc:
            metrics.ERRORS.labels(kind="submit_track").inc()
            log.warning("tracking pass failed", extra={"fields": {"error": str(exc)}})
