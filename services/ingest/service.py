"""Ingest: chain RPC in; `mev.<chain>.blocks` and `mev.<chain>.mempool` out.

Heads come by WebSocket `newHeads` where an endpoint offers it, else by HTTP polling (HyperEVM's
official RPC has no WebSocket); either way HeadFollower turns them into an ordered, gap-free,
deduplicated sequence with reorgs flagged, and each block is published with the Sync/Swap logs
of its V2 pools (one `eth_getLogs` per block, range-batched when backfilling). Pending
transactions to known routers and pairs are published to the mempool subject; a chain without
a pending feed runs block-driven, and health says so.

Why pending txs are published without waiting for each other: wallets and the devnet flow send
swaps in bursts (right after a block), and one awaited JetStream ack per tx made the last of a
burst of N wait N acks. Each tx's publish runs as its own task (at most
`mempool.fetch_concurrency` in flight, then the feed waits); a filter poll's hashes are fetched
in one JSON-RPC batch (one round trip, not one per hash), and so are the hashes a hash-only
subscription pushes while a fetch is in flight (hash_batch.py). A publish NATS refuses is tried
again while the tx is fresh, never dropped silently (`publish_pending`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any

from mev_common import metrics, subjects
from mev_common.aio import until_stopped
from mev_common.bus import Retryable
from mev_common.chain import budget
from mev_common.chain.block_phase import PhaseEstimator, Poll
from mev_common.chain.contracts import ChainContracts, ContractsError, load_contracts
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_blocks import rpc_int
from mev_common.chain.rpc_pool import RpcPool
from mev_common.chain.ws import SubscriptionRefused, subscribe
from mev_common.messages import Block, PendingTx, checksum, decode
from mev_common.runtime import Check, Runtime
from mev_common.stage import open_stage

from services.ingest.follower import HeadFollower, RawBlock, ReorgTooDeep, Step
from services.ingest.hash_batch import HashBatcher
from services.ingest.logs import LOG_TOPICS, group_logs, logs_for_block
from services.ingest.mempool import MempoolView
from services.ingest.normalize import block_from_rpc, pending_from_rpc
from services.ingest.range_poll import RangePoller, poll_interval_s

log = logging.getLogger("mev.ingest")

# a poll this long after the estimated production of a block (RPC node lag, clock error)
POLL_DELAY_S = 0.03
# pause between publishes of a pending tx that NATS refused (each already retried for the bus's
# publish timeout)
PENDING_RETRY_S = 0.2

WS_ERRORS = (OSError, TimeoutError, SubscriptionRefused, ConnectionError)


async def main(rt: Runtime) -> None:
    async with open_stage(rt) as stage:
        if not await stage.chain_answers():
            return
        ingest = Ingest(rt, stage.rpc)
        await ingest.resume_from_stream()
        stage.spawn(stage.rpc.monitor(rt.stop), "rpc-monitor")
        await asyncio.gather(ingest.follow_heads(), ingest.follow_pending())


class Ingest:
    def __init__(self, rt: Runtime, pool: RpcPool) -> None:
        self.rt = rt
        self.pool = pool
        self.chain = rt.chain_id
        self.follower = HeadFollower(self.fetch_block)
        self.mempool = MempoolView(
            rt.settings.mempool.max_age_s, rt.settings.mempool.max_pending_transactions
        )
        self.contracts: ChainContracts | None = None
        self._watched: frozenset[str] | None = None
        self.head_source = "starting"
        self.pending_source = "starting" if rt.settings.chain.pending_feed else "none"
        self.last_block: int | None = None
        self._in_flight = asyncio.Semaphore(rt.settings.mempool.fetch_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.hashes = HashBatcher(self.fetch_pending)  # a hash-only feed's pushes
        self.block_hop = metrics.HOP_LATENCY.labels(hop="ingest_block")  # head seen -> logs
        self.pending_hop = metrics.HOP_LATENCY.labels(hop="ingest_pending")  # seen -> stored
        rt.add_check("heads", lambda: Check(True, f"{self.head_source}, last {self.last_block}"))
        rt.add_check("mempool", self._mempool_check)

    def _mempool_check(self) -> Check:
        if self.pending_source == "none":
            return Check(True, "chain has no pending-tx feed: block-driven only", critical=False)
        return Check(True, f"{self.pending_source}, tracking {len(self.mempool)}", critical=False)

    # -- heads ---------------------------------------------------------------------------
    async def resume_from_stream(self) -> None:
        """Start after the last block already in the stream, so a restart backfills the gap."""
        data = await self.rt.bus.last_payload("BLOCKS", subjects.blocks(self.chain))
        if data is None:
            return
        last = decode(Block, data)
        self.follower.published[last.number] = last.hash
        log.info("resuming after block", extra={"fields": {"number": last.number}})

    async def fetch_block(self, number: int) -> RawBlock | None:
        result: RawBlock | None = await self.pool.call("eth_getBlockByNumber", [hex(number), False])
        return result

    async def follow_heads(self) -> None:
        ws_url = next((e.ws_url for e in self.rt.settings.chain.rpc_endpoints if e.ws_url), None)
        while not self.rt.stop.is_set():
            if ws_url:
                self.head_source = "websocket newHeads"
                await self._until_stopped(self._ws_heads(ws_url))
                if self.rt.stop.is_set():
                    return
                log.warning("newHeads WebSocket down: polling over HTTP")
            self.head_source = "http polling"
            # without a WebSocket, poll forever; with one, poll a while and then try it again
            await self._poll_heads(duration_s=None if ws_url is None else 10.0)

    async def _ws_heads(self, url: str) -> None:
        try:
            async for header in subscribe(url, ["newHeads"]):
                await self.on_head(header, time.time_ns())
        except WS_ERRORS as exc:
            log.warning("newHeads subscription ended", extra={"fields": {"error": repr(exc)}})

    async def _poll_heads(self, duration_s: float | None) -> None:
        if budget.process_budget().per_minute is not None and duration_s is None:
            await self._poll_ranges()  # under an RPC budget (HyperEVM): range_poll.py
            return
        interval = max(0.05, self.rt.settings.chain.block_time_s / 2)
        until = None if duration_s is None else time.monotonic() + duration_s
        while not self.rt.stop.is_set() and (until is None or time.monotonic() < until):
            # over the call budget, skip a poll: the next head backfills the blocks missed
            if budget.process_budget().allows(2, keep_free=0.1):
                await self._poll_once()
            else:
                metrics.RPC_BUDGET_SKIPS.labels(what="head_poll").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.stop.wait(), timeout=interval)

    async def _poll_once(self) -> None:
        try:
            head = await self.pool.call("eth_getBlockByNumber", ["latest", False])
            if head:
                await self.on_head(head, time.time_ns())
        except RpcError as exc:
            metrics.ERRORS.labels(kind="rpc").inc()
            log.warning("head poll failed", extra={"fields": {"error": str(exc)}})

    async def _poll_ranges(self) -> None:
        """One batch per poll (head + logs since the last block published), one message.

        Polls are phase-locked (mev_common.chain.block_phase): each is due `interval` after
        the previous one was due (so as many calls a minute as before) and then moved to
        just after the estimated production of a block (less than a block later), so a head
        is seen soon after it is produced; each message carries the estimated production of
        its block (None while not locked) for submit's guard."""
        block_time = self.rt.settings.chain.block_time_s
        interval = poll_interval_s(budget.process_budget().per_minute, block_time, 2)
        self.head_source = f"http polling every {interval:.2f} s (RPC budget, phase-locked)"
        poller, polled_at = RangePoller(self.chain), time.monotonic()
        phase = PhaseEstimator(block_time)
        due = time.time()
        while not self.rt.stop.is_set():
            try:
                calls = poller.calls((time.monotonic() - polled_at) / block_time)
                polled_at, sent = time.monotonic(), time.time()
                replies = await self.pool.call_batch(calls)
                received = time.time()
                if isinstance(
                    bad := next((r for r in replies if isinstance(r, RpcError)), None), RpcError
                ):
                    raise bad
                head = replies[0]
                if isinstance(head, dict):
                    was_locked = phase.locked
                    phase.observe(Poll(sent, received, rpc_int(head["number"])))
                    metrics.BLOCK_PHASE_LOCKED.set(1 if phase.locked else 0)
                    if phase.locked != was_locked:
                        fields = {"phase": phase.interval(), "resets": phase.resets}
                        log.info(
                            f"block phase {'locked' if phase.locked else 'unlocked'}",
                            extra={"fields": fields},
                        )
                if len(replies) == 1 and isinstance(head, dict) and poller.see_head(head):
                    replies += await self.pool.call_batch(poller.catch_up_calls())
                if len(replies) == 2 and (block := poller.block(head, replies[1] or [])):
                    produced = phase.produced_at(block.number)
                    if produced is not None:
                        block = block.model_copy(update={"produced_at_ns": int(produced * 1e9)})
                    await self.publish_block(block, time.time_ns())
            except RpcError as exc:
                metrics.ERRORS.labels(kind="rpc").inc()
                log.warning("head poll failed", extra={"fields": {"error": str(exc)}})
            due = max(due + interval, time.time())  # never a burst to catch up after a stall
            wait = phase.next_poll(due, POLL_DELAY_S) - time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.stop.wait(), timeout=max(0.0, wait))

    async def on_head(self, header: RawBlock, seen_ns: int) -> None:
        try:
            steps = await self.follower.advance(header)
        except ReorgTooDeep as exc:
            log.error("deep reorg: restarting the follower", extra={"fields": {"error": str(exc)}})
            self.follower = HeadFollower(self.fetch_block)
            steps = [Step(header, reorg=True)]
            await self.follower.advance(header)
        if not steps:
            return
        logs = await self.fetch_logs(steps)
        self.block_hop.observe(max(0.0, (time.time_ns() - seen_ns) / 1e9))
        for step in steps:
            block = block_from_rpc(self.chain, step.raw, reorg=step.reorg)
            block = block.model_copy(update={"logs": logs.get(block.hash, [])})
            await self.publish_block(block, seen_ns)
            self.mempool.mined(step.raw.get("transactions") or [])

    async def fetch_logs(self, steps: list[Step]) -> dict[str, list[Any]]:
        """One eth_getLogs per block; a backfill of several blocks in range-limited batches."""
        if len(steps) == 1:
            raw = await self.pool.call(
                "eth_getLogs", [{"blockHash": steps[0].hash, "topics": [LOG_TOPICS]}]
            )
            return {steps[0].hash: logs_for_block(raw or [], steps[0].hash)}
        found: list[dict[str, Any]] = []
        span = self.rt.settings.chain.max_logs_block_range
        first, last = steps[0].number, steps[-1].number
        for start in range(first, last + 1, span):
            end = min(last, start + span - 1)
            found += (
                await self.pool.call(
                    "eth_getLogs",
                    [{"fromBlock": hex(start), "toBlock": hex(end), "topics": [LOG_TOPICS]}],
                )
                or []
            )
        return group_logs(found, {s.hash for s in steps})

    async def publish_block(self, block: Block, seen_ns: int) -> None:
        """Blocks are never skipped: retry the publish until NATS takes it (or we stop)."""
        while True:
            try:
                await self.rt.bus.publish(
                    subjects.blocks(self.chain),
                    block,
                    msg_id=block.hash,
                    trace=block.hash,
                    seen_ns=seen_ns,
                )
                break
            except Retryable:
                if self.rt.stop.is_set():
                    return
                await asyncio.sleep(0.2)
        self.last_block = block.number
        metrics.TRANSACTIONS_PROCESSED.labels(stage="ingest").inc()
        self.rt.ready = True

    # -- pending transactions ------------------------------------------------------------
    def watched(self) -> frozenset[str]:
        """Routers and pairs whose pending calls can move a pool we trade."""
        if self.contracts is None:
            with contextlib.suppress(ContractsError):
                self.contracts = load_contracts(self.rt.settings)
        if self.contracts is None:
            return frozenset()
        if self._watched is None:  # built once: it was rebuilt for every pending tx
            self._watched = self.contracts.routers | {p.address for p in self.contracts.pairs}
        return self._watched

    async def follow_pending(self) -> None:
        metrics.PENDING_FEED.set(1 if self.rt.settings.chain.pending_feed else 0)
        if not self.rt.settings.chain.pending_feed:
            return
        ws = next((e for e in self.rt.settings.chain.rpc_endpoints if e.ws_url), None)
        while not self.rt.stop.is_set():
            if ws is not None and ws.ws_url:
                self.pending_source = "websocket newPendingTransactions"
                await self._until_stopped(self._ws_pending(ws.ws_url, ws.name))
                if self.rt.stop.is_set():
                    return
            self.pending_source = "http pending filter"
            await self._poll_pending(duration_s=None if ws is None else 10.0)

    async def _ws_pending(self, url: str, endpoint: str) -> None:
        try:
            async for tx in subscribe(url, ["newPendingTransactions", True]):
                seen_ns = time.time_ns()
                if isinstance(tx, dict):
                    await self.spawn(self.on_pending(tx, seen_ns, endpoint))
                elif isinstance(tx, str):  # a node that ignores `true` and sends hashes only
                    self.hashes.add(tx, seen_ns)
        except WS_ERRORS as exc:
            log.warning("pending subscription ended", extra={"fields": {"error": repr(exc)}})

    async def spawn(self, work: Awaitable[None]) -> None:
        """Run `work` as a task, at most `fetch_concurrency` at once (then wait for a slot)."""
        await self._in_flight.acquire()
        task = asyncio.ensure_future(work)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._in_flight.release()
            if not t.cancelled() and (exc := t.exception()) is not None:
                metrics.ERRORS.labels(kind="bad_pending_tx").inc()
                log.warning("pending tx not handled", extra={"fields": {"error": repr(exc)}})

        task.add_done_callback(done)

    async def fetch_pending(self, hashes: list[tuple[str, int]]) -> None:
        """The txs behind (hash, seen_ns) pairs, in one JSON-RPC batch (one token of the RPC
        budget per hash, as before), each published on its own task."""
        if not hashes:
            return
        calls = [("eth_getTransactionByHash", [h]) for h, _ in hashes]
        try:  # the endpoint that returns a tx holds it: a backrun of it goes there
            raws = await self.pool.call_batch_sourced(calls)
        except RpcError:
            metrics.ERRORS.labels(kind="rpc").inc()
            return
        for (endpoint, raw), (_, seen_ns) in zip(raws, hashes, strict=True):
            if isinstance(raw, dict):
                await self.spawn(self.on_pending(raw, seen_ns, endpoint))

    async def _poll_pending(self, duration_s: float | None) -> None:
        """eth_newPendingTransactionFilter, then fetch the new hashes in one batch per poll."""
        until = None if duration_s is None else time.monotonic() + duration_s
        filter_id: str | None = None
        while not self.rt.stop.is_set() and (until is None or time.monotonic() < until):
            try:
                if filter_id is None:
                    filter_id = await self.pool.call("eth_newPendingTransactionFilter")
                hashes = await self.pool.call("eth_getFilterChanges", [filter_id]) or []
            except RpcError:
                filter_id = None
                await asyncio.sleep(1.0)
                continue
            seen_ns = time.time_ns()
            await self.fetch_pending([(h, seen_ns) for h in hashes if h not in self.mempool.seen])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.stop.wait(), timeout=0.05)

    async def on_pending(self, raw: dict[str, Any], seen_ns: int, seen_on: str | None) -> None:
        metrics.TRANSACTIONS_PROCESSED.labels(stage="ingest").inc()
        to = raw.get("to")
        if not to or not self.mempool.add(raw["hash"]):
            return
        metrics.MEMPOOL_SIZE.set(len(self.mempool))
        if checksum(to) not in self.watched():
            return
        try:
            tx: PendingTx = pending_from_rpc(self.chain, raw, seen_on)
        except ValueError as exc:
            metrics.ERRORS.labels(kind="bad_pending_tx").inc()
            log.warning("unreadable pending tx", extra={"fields": {"error": str(exc)[:200]}})
            return
        await self.publish_pending(tx, seen_ns)

    async def publish_pending(self, tx: PendingTx, seen_ns: int) -> None:
        """At least once while it can matter: a publish NATS refuses (broker or stream leader
        away past the publish timeout) is tried again until the tx is older than
        `mempool.max_age_s` (the stream would expire it) or we stop; only then is it given
        up, counted (`mev_bot_errors{kind="pending_not_published"}`) and logged. It was
        dropped silently: a swap seen during a NATS outage never reached detect."""
        give_up_ns = seen_ns + int(self.rt.settings.mempool.max_age_s * 1e9)
        while True:
            try:
                await self.rt.bus.publish(
                    subjects.mempool(self.chain), tx, msg_id=tx.hash, trace=tx.hash, seen_ns=seen_ns
                )
                self.pending_hop.observe(max(0.0, (time.time_ns() - seen_ns) / 1e9))
                return
            except Retryable as exc:
                if self.rt.stop.is_set() or time.time_ns() >= give_up_ns:
                    metrics.ERRORS.labels(kind="pending_not_published").inc()
                    fields = {"hash": tx.hash, "error": str(exc)[:200]}
                    log.warning("pending tx not published", extra={"fields": fields})
                    return
                await asyncio.sleep(PENDING_RETRY_S)

    async def _until_stopped(self, work: Awaitable[None]) -> None:
        """Run `work` until it ends or the service stops (then cancel it); a failure falls
        back to polling, like a dropped socket."""
        try:
            await until_stopped(self.rt.stop, work)
        except Exception as exc:
            log.warning("subscription failed", extra={"fields": {"error": repr(exc)}})
