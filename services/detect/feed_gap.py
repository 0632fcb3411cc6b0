"""Whether detect's pending book may be missing swaps: a gap in the mempool feed (`FeedGap`,
pure), and what detect does about one (the reconnect watcher, the swaps skipped while loading).

Every trade detect publishes is judged on the pending book: a backrun is dropped (crowded) or
carries the swaps that go first (`ahead`), a block trade is re-priced behind them. A swap
missing from the book and tipping more through the trade's pools is mined ahead of it: the
trade meets another state than the one simulate proved it on and the executor reverts it
(gas lost). The chaos test's NATS restart did that: the swaps ingest saw during the outage
reached detect 1-4 s late, in a burst, and a backrun published early in the burst was run
into by a swap later in it (the withdrawal it triggered raced submit's send). What opens a
gap (`opened`):

- NATS came back (the bus re-declared its state): the burst is on its way, and a swap in
  flight on the dead connection comes back only after the consumer's ack wait;
- a pending tx delivered again (an earlier delivery was never acked: a detect that died with
  it, or a connection that did; its neighbours in that batch may be missing too).

A tx that is merely late opens nothing: under load the consumer runs seconds behind for long
stretches with nothing missing (a late-tx rule held every trade for as long: the cluster chaos
test's leader kill found no bundle within its 10-s bound). A swap detect skips while its pools
reload is not a gap either: it is kept and booked after the load (`skip`, `book_skipped`; a
restarted detect acked 87-110 so, unbooked, and judged trades without them).

A swap missing at a gap was sent before it, and a block mined after the gap includes it (a
fee-ordered block with room takes every ready tx): once detect has applied a block mined more
than `CLOCK_MARGIN_S` after the last gap event, what the book lacks is on chain. The event is a
time on our clock, the block's stamp one on the chain's, and the two differ (a devnet loaded
from a state dump runs minutes behind; a node's or host's clock a few seconds off): compared as
they were, a chain behind ours released no hold before its timeout, and one ahead released on
the first block applied, even one mined before the event (the swap it missed still pending: a
backrun without it can revert). So the event is moved to the chain's clock by `clock_offset`:
the least, over the last `OFFSET_BLOCKS` blocks (the one applied included), of ingest's seen
time (`Mev-Seen-Ns`) less the block's stamp. That is the offset plus ingest's least latency
and a stamp's rounding (the devnet's anvil stamps whole seconds): it places the event early on
the chain's clock by that much, which the margin covers, and a block ingest saw less than the
margin after the event never releases. An estimate wrong the other way (the chain fell further
behind: the old least stays a while) only holds to the timeout, as does a hold before any
block with a seen time. Every path that applies a block releases (service.py `on_block`: a
live block, a replayed one, a gap or deep-reorg reload, the snapshot's own). Whichever comes
first, the hold also ends `max_hold_s` (two block times) after the event that opened it: a
later event moves the time a block must be mined past, never the end, so no run of events (a
redelivered batch, a flapping link) and no missing block (a devnet mined by hand, a stalled
block stream) keeps detect from trading for longer. Held trades are dropped (not deferred) and
counted: `feed_gap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from mev_common import metrics
from mev_common.bus import Bus
from mev_common.chain.router_calls import RouterCallError
from mev_common.chain.swap_router_calls import SwapRouterCallError
from mev_common.messages import PendingTx

from services.detect.pending_swaps import decode_pending

if TYPE_CHECKING:
    from services.detect.service import Detector

log = logging.getLogger("mev.detect")
T = TypeVar("T")
CLOCK_MARGIN_S = 1.0
OFFSET_BLOCKS = 32  # the recent blocks the chain's clock is measured against ours on
SKIPPED_KEPT = 20_000  # pending swaps kept to book after a (re)load; past it: a feed gap


@dataclass
class FeedGap:
    """Detect's mempool feed: whole, or unsure since `since` (unix s, our clock) for `reason`
    until a block mined after it (by the chain's clock: `clock_offset`), or `until` by ours."""

    max_hold_s: float  # detect uses two block times
    clock: Callable[[], float] = field(default=time.time)
    since: float | None = None  # the last gap event of the open hold
    opened_at: float = 0.0  # the open hold's first event
    until: float = 0.0  # the open hold ends then at the latest (opened_at + max_hold_s)
    reason: str = ""
    held: int = 0  # trades not published while unsure
    # ingest's seen time less the stamp, over the last OFFSET_BLOCKS blocks applied
    offsets: deque[float] = field(default_factory=lambda: deque(maxlen=OFFSET_BLOCKS))

    def opened(self, reason: str) -> bool:
        """A gap event now: unsure until a block mined after it. True if newly unsure."""
        now = self.clock()
        self.expire(now)
        fresh = self.since is None
        if fresh:
            self.opened_at, self.until, self.reason = now, now + self.max_hold_s, reason
            log.warning("pending view has a gap: trades held", extra={"fields": {"why": reason}})
        self.since = max(self.since or now, now)
        return fresh

    def on_pending(self, deliveries: int) -> bool:
        """A pending tx delivered `deliveries` times: a gap if redelivered."""
        return deliveries > 1 and self.opened("pending tx redelivered")

    def on_block(self, timestamp: int, seen_s: float) -> bool:
        """A block applied (its chain stamp; when ingest saw it, 0 if unknown): whole again if
        it was mined after the last gap event. True when this block closes the gap."""
        if seen_s > 0:
            self.offsets.append(seen_s - timestamp)
        offset = self.clock_offset
        if (
            self.since is None
            or offset is None
            or timestamp <= self.since - offset + CLOCK_MARGIN_S
        ):
            return self.expire(self.clock())
        return self._whole("block", self.clock())

    @property
    def clock_offset(self) -> float | None:
        """Our clock less the chain's, plus ingest's least latency over the recent blocks (and
        a stamp's rounding); None before a block with a seen time."""
        return min(self.offsets) if self.offsets else None

    def expire(self, now: float) -> bool:
        """Whole again if the open hold has run `max_hold_s`. True when this closes it."""
        return self.since is not None and now >= self.until and self._whole("timeout", now)

    def hold(self, trades: list[T]) -> list[T]:
        """`trades`, or none while unsure (counted: held, and the `feed_gap` drop reason)."""
        if self.since is None or not trades or self.expire(self.clock()):
            return trades
        self.held += len(trades)
        metrics.OPPORTUNITIES_DROPPED.labels(reason="feed_gap").inc(len(trades))
        return []

    @property
    def whole(self) -> bool:
        return self.since is None

    def _whole(self, by: str, at: float) -> bool:
        fields = {"by": by, "after_s": round(at - self.opened_at, 2)}
        self.since, self.reason = None, ""
        log.info("pending view whole again", extra={"fields": {**fields, "held": self.held}})
        return True


async def watch_reconnects(bus: Bus, stop: asyncio.Event, feed: FeedGap) -> None:
    """NATS came back (the bus re-declared its state): swaps in flight to us then, or sent
    during the outage and not yet delivered, are missing: a gap in the feed. Also ends an open
    hold on time when nothing else comes to (its log line then says so when it happens)."""
    seen = bus.generation
    while not stop.is_set():
        left = None if feed.whole else max(0.0, feed.until - feed.clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bus.wait_generation(seen, stop), left)
        feed.expire(feed.clock())
        if bus.generation != seen:
            seen = bus.generation
            feed.opened("nats reconnected")


def skip(det: Detector, tx: PendingTx) -> None:
    """A pending swap acked while the pools (re)load: kept to book after it, or past
    `SKIPPED_KEPT`, lost: a gap in the feed."""
    if len(det.skipped) < SKIPPED_KEPT:
        det.skipped.append(tx)
    else:
        det.feed.opened("pending swaps lost while the pools loaded")


async def book_skipped(det: Detector) -> None:
    """Book the swaps `skip` kept, now that the pools are loaded. Their backruns are not
    searched (seconds old, on a state they were not sent against); booked, they crowd,
    withdraw, or go ahead of the trades judged from now on."""
    head = det.head
    if not det.loaded or head is None or not det.skipped:
        return
    skipped, det.skipped, booked = det.skipped, [], 0
    for tx in skipped:
        try:
            swap = decode_pending(det, tx)
        except (RouterCallError, SwapRouterCallError):
            continue  # it decoded when it came: not after a reload that dropped its pool
        if swap is not None and tx.hash not in det.pending.entries:
            await det.book(tx, swap, head)
            booked += 1
    log.info("pending swaps seen while loading booked", extra={"fields": {"n": booked}})
