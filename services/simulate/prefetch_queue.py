"""The pools to prefetch (prefetch.py) into the warm EVM, off the hot path, again after a refork.

A pool's prefetch puts its state into one EVM's database. A refork (warm.WarmEvm.fork: a reorg,
a gap in the blocks, a patch that cannot be exact, a V3 pool changed without its diff, an RPC
failover) starts a new EVM whose database is empty. What is known of a pool's tokens
(`pair_tokens`) and of a token's balance mapping still holds (neither ever changes), but that is
not state the EVM holds: the service skipped every pool it had seen before, so after a refork
each simulation read its pools' accounts and slots lazily, one blocking RPC each on the event
loop (h84: 14 reads, 5 ms of CPU and 48 ms of wall for one V3 route). So the queue asks the
warm EVM whether its current database holds a pool (`WarmEvm.holds`), remembers every pool it
was asked for, and after each refork (`forked`, WarmEvm's hook) queues again those the new EVM
does not hold, the most recently wanted first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.simulate.prefetch import PoolProbe
from services.simulate.warm import WarmEvm

LIMIT = 4096  # pools remembered at most (a hostile bus may name many): the least recent go


@dataclass
class PrefetchQueue:
    warm: WarmEvm
    limit: int = LIMIT
    known: dict[str, PoolProbe] = field(default_factory=dict)  # least recently wanted first
    in_flight: set[str] = field(default_factory=set)  # queued or being prefetched
    queue: asyncio.Queue[PoolProbe] = field(default_factory=asyncio.Queue)
    requeued: int = 0  # pools queued again after a refork

    def want(self, probe: PoolProbe) -> None:
        """`probe`'s pool is used: prefetch it unless the EVM holds it or it is on its way."""
        self.known.pop(probe.pair, None)
        self.known[probe.pair] = probe
        if len(self.known) > self.limit:
            del self.known[next(iter(self.known))]
        self._queue(probe)

    def forked(self) -> None:
        """A refork emptied the EVM's database: every known pool again, most recent first. A
        pool in flight is loaded into the new EVM when its trace is of the new fork's head
        (WarmEvm.load checks), else traced again (prefetch_pool retries)."""
        for probe in reversed(list(self.known.values())):
            if self._queue(probe):
                self.requeued += 1

    def done(self, pair: str) -> None:
        self.in_flight.discard(pair)

    def _queue(self, probe: PoolProbe) -> bool:
        if probe.pair in self.in_flight or self.warm.holds(probe.pair):
            return False
        self.in_flight.add(probe.pair)
        self.queue.put_nowait(probe)
        return True
