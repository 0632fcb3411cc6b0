"""Simulate's I/O when the RPC serves state at `latest` only (chain.latest_state_only).

The service keeps its shape; these methods replace the forked EVM's lazy reads: pools are
discovered and loaded in checked batches (latest_state.discover), and a refork is followed by
one reload of every known key (latest_state.reload). Both are off the hot path; until a pool
is loaded its opportunities are dropped as `state_not_loaded`, never simulated on guesses.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool

from services.simulate.latest_state import StateMoved, discover, reload
from services.simulate.prefetch import PoolProbe

if TYPE_CHECKING:
    from mev_common.stage import Stage

    from services.simulate.prefetch_queue import PrefetchQueue
    from services.simulate.warm import WarmEvm

log = logging.getLogger("mev.simulate")


def drain(queue: asyncio.Queue[PoolProbe]) -> list[PoolProbe]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def fetch_owner(rpc: RpcPool, executor: str, slot: int) -> int:
    raw = await rpc.call("eth_getStorageAt", [executor, hex(slot), "latest"])
    return int(str(raw), 16)


class LatestMode:
    stage: Stage
    rpc: RpcPool
    warm: WarmEvm
    prefetches: PrefetchQueue
    background: set[asyncio.Task[None]]
    _reloading: asyncio.Task[None] | None = None

    async def read_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return await self.rpc.call_batch(calls, chunk=max(1, len(calls)))  # one HTTP batch

    async def discover(self, probes: list[PoolProbe], bot: str) -> None:
        """Load `probes`' pools (waiting for budget: this is work that can wait)."""
        while not budget.process_budget().allows(1, keep_free=0.2):
            metrics.RPC_BUDGET_SKIPS.labels(what="simulate_discovery").inc()
            await asyncio.sleep(2.0)
        try:
            if self.warm.reload_needed and self._reloading is not None:
                await asyncio.shield(self._reloading)
            loaded = await discover(self.read_batch, self.warm, probes, bot)
            metrics.SIMULATOR_PREFETCHES.labels(result="ok").inc(len(loaded))
            log.info("pools loaded at latest", extra={"fields": {"pairs": len(loaded)}})
        except (RpcError, StateMoved) as exc:
            metrics.SIMULATOR_PREFETCHES.labels(result="error").inc()
            log.warning("pool discovery failed", extra={"fields": {"error": str(exc)}})
            if isinstance(exc, StateMoved):
                self.warm.reload_needed = True
                self.queue_reload()
        finally:
            for probe in probes:
                self.prefetches.done(probe.pair)

    def queue_reload(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = self.stage.spawn(self._reload(), "reload")

    async def _reload(self) -> None:
        for attempt in range(10):
            try:
                number = await reload(self.read_batch, self.warm)
                metrics.SIMULATOR_REFORKS.inc()
                log.info("state reloaded at latest", extra={"fields": {"block": number}})
                return
            except (RpcError, StateMoved) as exc:
                log.warning("reload failed", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(min(5.0, 0.5 * 2**attempt))
