"""Pending-swap backruns before block-triggered simulations.

Simulate runs one EVM on one event loop: a simulation is CPU the loop cannot share, and every
await (a victim's trace, a block diff, the bundle's publish ack) lets whichever handler is
ready next take the loop. A block's opportunities arrive together and are priced on the head's
end state, valid for the whole block; a backrun races its victim's block and its latency is
the bot's. So while a backrun is in flight (arrived, not yet published or dropped) a
block-triggered simulation about to run waits for it, at most `max_wait_s` (a stream of
backruns never starves a block), and then re-checks its staleness like any other wait.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class PendingFirst:
    """Backruns in flight, and a wait for block-triggered work until there are none."""

    inflight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    yielded: int = 0  # block-triggered simulations that waited for a backrun

    def __post_init__(self) -> None:
        self.idle.set()

    def enter(self) -> None:
        """A backrun arrived (call before its first await)."""
        self.inflight += 1
        self.idle.clear()

    def leave(self) -> None:
        """That backrun was published or dropped (call exactly once per `enter`)."""
        if self.inflight <= 0:
            raise RuntimeError("PendingFirst.leave without enter")
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    @property
    def busy(self) -> bool:
        return self.inflight > 0

    async def wait(self, max_wait_s: float) -> float:
        """Until no backrun is in flight or `max_wait_s` passed; seconds waited."""
        if not self.busy:
            return 0.0
        self.yielded += 1
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.idle.wait(), timeout=max_wait_s)
        except TimeoutError:
            pass
        return time.monotonic() - started
