"""How far one block message may raise submit's head without the chain's word on it.

Why: submit takes the head from each block message at once (block_feed.py), so the bundles of
a block the chain has left are refused with no RPC round trip. The bus is hostile: a forged
message on `mev.<chain>.blocks` with a very high number would raise the head for good (it only
rises), and the gate would refuse every bundle after it (proven on a block below the head, its
deadline passed): a denial of service. So a message may raise the head to at most the head the
chain last confirmed (an RPC read) plus `SLACK_BLOCKS`, plus one block per block time since
that read (for at most `HORIZON_BLOCKS` block times): as far as a chain producing at
`chain.block_time_s` can have got. A higher number is not taken; it is checked against the
chain off the hot path (one head read, at most one per half block time), which raises the head
only if the chain agrees. Within the bound a forger can still run the head `SLACK_BLOCKS`
ahead of the chain (more by as much as the chain runs slower than `block_time_s` since the
last read), no further. Under an RPC budget submit reads the head only when it must
(block_feed.follow_blocks): the horizon then costs one head read per `HORIZON_BLOCKS` blocks at
most, and keeps a slow chain's drift from widening the bound without end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SLACK_BLOCKS = 1  # the next block's message may come before the RPC poll sees it
HORIZON_BLOCKS = 60  # block times after a read that still widen the bound (a minute at 1 s)


@dataclass
class HeadGuard:
    """Pure: the ceiling a block message's head must not pass (times are monotonic seconds)."""

    block_time_s: float
    slack: int = SLACK_BLOCKS
    horizon: int = HORIZON_BLOCKS
    confirmed: int = -1  # the highest head an RPC read returned (-1: none yet)
    confirmed_at: float = 0.0  # when the chain last said its head was `confirmed`
    checked_at: float = -math.inf  # when a check of a refused head was last let through

    def confirm(self, number: int, now: float) -> None:
        """The chain's own head read at `now` (a lower one, from a lagging node, is ignored)."""
        if number >= self.confirmed:
            self.confirmed, self.confirmed_at = number, now

    def ceiling(self, now: float) -> int:
        """The highest head a block message may give at `now` (-1 before any RPC read)."""
        if self.confirmed < 0:
            return -1
        blocks = int(max(0.0, now - self.confirmed_at) // self.block_time_s)
        return self.confirmed + self.slack + min(blocks, self.horizon)

    def admits(self, number: int, now: float) -> bool:
        return number <= self.ceiling(now)

    def routine(self, number: int, now: float) -> bool:
        """Whether a refused `number` is only past the horizon (a chain at its block time the
        whole while would have got there): the read that confirms it is routine under an RPC
        budget, once per horizon, not a sign of a forged message."""
        if self.confirmed < 0:
            return True  # no read yet: nothing to hold it against
        blocks = int(max(0.0, now - self.confirmed_at) // self.block_time_s)
        return number <= self.confirmed + self.slack + blocks

    def check_due(self, now: float) -> bool:
        """Whether a refused head should be read from the chain now: at most once per half
        block time, so a flood of forged messages costs at most two RPC calls a block."""
        if now - self.checked_at < self.block_time_s / 2:
            return False
        self.checked_at = now
        return True
