"""Block diffs fetched off the hot path and applied to the warm EVM in block order.

After each block the warm EVM lists what awaits a diff (warm.WarmEvm.pending: the V3 pools with
events, our executor after its V3 trade). One task asks the node for each such block's diff
(block_diff.py) and applies it; a simulation through a pending pool awaits `wait` first, any
other goes ahead. A node without the trace (method unsupported) switches diffs off for good:
such pools are marked dirty and reforked on use, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from mev_common import metrics

from services.simulate.block_diff import TRACE_METHOD, parse_block_diff, trace_params
from services.simulate.prefetch import trace_refusal
from services.simulate.reference import RpcCall
from services.simulate.warm import WarmEvm

log = logging.getLogger("mev.simulate.diff")


@dataclass
class DiffFeed:
    warm: WarmEvm
    call: RpcCall
    queued: int = 0  # the highest block number queued
    queue: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_block(self) -> None:
        """Queue the blocks that became pending (in order); call after warm.advance."""
        for number in sorted(self.warm.pending):
            if number > self.queued:
                self.queue.put_nowait(number)
                self.queued = number

    async def run(self) -> None:
        while True:
            number = await self.queue.get()
            if number not in self.warm.pending:
                continue  # a refork since: the fork has the state already
            try:
                raw = await self.call(TRACE_METHOD, trace_params(number))
                self.warm.apply_diff(parse_block_diff(number, raw))
                result = "block_diff_ok"
            except Exception as exc:  # no diff: its pools refork on use (warm.diff_failed)
                refusal = trace_refusal(exc)
                result = f"block_diff_{refusal}"
                self.warm.diff_failed(number, unsupported=refusal == "unsupported")
                log.warning(
                    "block diff failed", extra={"fields": {"block": number, "error": repr(exc)}}
                )
            metrics.SIMULATOR_PREFETCHES.labels(result=result).inc()
            self.changed.set()
            self.changed = asyncio.Event()

    async def wait(self, pools: list[str], timeout_s: float) -> float:
        """Wait (at most `timeout_s`) until no diff that a trade through `pools` reads is
        pending; seconds waited. Past the timeout the simulation reforks (warm.refresh)."""
        started = time.monotonic()
        deadline = started + timeout_s
        while self.warm.waits(pools):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=left)
            except TimeoutError:
                break
        return time.monotonic() - started
