"""Whether detect's pending book may be missing swaps: a gap in the mempool feed. Pure.

Every trade detect publishes is judged on the pending book: a backrun is dropped (crowded) or
carries the swaps that go first (`ahead`), a block trade is re-priced behind them. A swap
missing from the book and tipping more through the trade's pools is mined ahead of it: the
trade meets another state than the one simulate proved it on and the executor reverts it
(gas lost). The chaos test's NATS restart did that: after the outage the swaps ingest had
seen meanwhile reached detect 1-4 s late, in a burst; those delivered on the connection that
died come back only after the consumer's ack wait (30 s), and an emptied store loses the ones
not yet fetched. So the book is not whole after

- a new bus generation (NATS came back: state re-declared, consumers re-subscribed),
- a pending tx delivered again (an earlier delivery was not acked: maybe never received),
- a pending tx that reaches detect more than `late_s` after ingest saw it (the feed
  was not live: others of its time may still be on their way),
- a pending swap detect acked without booking it (it arrived while the pools reloaded).

A restarted detect is handed what was published while it was down (late) and, after the ack
wait, what its last run fetched and never acked (redelivered): both open a gap then.

A swap missing then was sent before the gap event. A block mined after that moment includes
it (a fee-ordered block with room takes every ready tx), so once detect has applied a block
whose timestamp is later than the last gap event, what the book lacks is on chain (in the
state trades are proven on) or stays pending as it would with the feed whole; trades are
held (not published, counted) until then. The block's timestamp is the chain's clock
compared with ours (the devnet's anvil stamps blocks with the host's clock, in whole
seconds): a block counts when stamped more than `CLOCK_MARGIN_S` after the event, so a stamp
rounded up or a node clock a little ahead does not release the trades a block early.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from mev_common import metrics

log = logging.getLogger("mev.detect")
T = TypeVar("T")
CLOCK_MARGIN_S = 1.0


@dataclass
class FeedGap:
    """Detect's mempool feed: whole, or unsure since `since` (unix s) for `reason`."""

    late_s: float  # detect uses two block times (a tx this late missed a block of decisions)
    since: float | None = None
    reason: str = ""
    held: int = 0  # trades not published while unsure

    def opened(self, now: float, reason: str) -> bool:
        """A gap event at `now`: unsure until a block mined after it. True if newly unsure."""
        fresh = self.since is None
        if self.since is None or now >= self.since:
            self.since, self.reason = now, reason
        if fresh:
            log.warning("pending view has a gap: trades held", extra={"fields": {"why": reason}})
        return fresh

    def on_pending(self, now: float, seen_s: float, deliveries: int) -> bool:
        """A pending tx received at `now` that ingest saw at `seen_s`, delivered `deliveries`
        times: a gap if redelivered or late. True if newly unsure."""
        if deliveries > 1:
            return self.opened(now, "pending tx redelivered")
        if now - seen_s > self.late_s:
            return self.opened(now, "pending tx late")
        return False

    def on_block(self, timestamp: int) -> bool:
        """A block applied (its chain timestamp): whole again if it was mined after the last
        gap event. True when this block closes the gap."""
        if self.since is None or timestamp <= self.since + CLOCK_MARGIN_S:
            return False
        self.since, self.reason = None, ""
        log.info("pending view whole again", extra={"fields": {"block_time": timestamp}})
        return True

    def hold(self, trades: list[T]) -> list[T]:
        """`trades`, or none while unsure (counted: held, and the `feed_gap` drop reason)."""
        if self.since is None or not trades:
            return trades
        self.held += len(trades)
        metrics.OPPORTUNITIES_DROPPED.labels(reason="feed_gap").inc(len(trades))
        return []

    @property
    def whole(self) -> bool:
        return self.since is None
