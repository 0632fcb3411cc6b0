"""Stall detection for a consumer: work is waiting but nothing has been acked for too long.

Pure logic (no NATS): the consume loop calls `progress()` on every ack, the runtime's lag
poller calls `observe(lag)`. A consumer is stalled when lag has stayed above zero for
`stall_s` with no ack meanwhile. An idle consumer (lag 0) is never stalled, however long ago
its last ack: the clock starts when work is first seen waiting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class StallWatch:
    """`stall_s` of waiting work without an ack makes `stalled()` true."""

    stall_s: float
    lag: int = 0
    last_progress: float = float("-inf")  # monotonic time of the last ack
    waiting_since: float | None = None  # monotonic time lag was first seen > 0

    def progress(self, now: float | None = None) -> None:
        self.last_progress = time.monotonic() if now is None else now

    def observe(self, lag: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.lag = lag
        if lag <= 0:
            self.waiting_since = None
        elif self.waiting_since is None:
            self.waiting_since = now

    def stalled_for(self, now: float | None = None) -> float:
        """Seconds of waiting work with no ack (0 when not waiting)."""
        if self.waiting_since is None or self.lag <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, now - max(self.waiting_since, self.last_progress))

    def stalled(self, now: float | None = None) -> bool:
        return self.stalled_for(now) >= self.stall_s
