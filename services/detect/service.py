"""Detect: `mev.<chain>.blocks` (ordered, every replica) and `mev.<chain>.mempool` (shared pull)
in; `mev.<chain>.opportunities.<strategy>` out.

At start it loads every pair of the configured factories at one block, then keeps the reserves
from each block's Sync logs (the block stream is read from a few seconds back and buffered
during the load, so nothing falls between snapshot and stream). Each block searches the cycles
through the pools it changed, and again the cycles the previous block's search found (a gap
we did not close stays open with its pools unchanged); each pending router swap is applied to
copies of its pools and
the cycles through them are searched on that post-swap state (a backrun).

Replicas (`services.detect.replicas` > 1) share the mempool consumer, so each searches only
its share of the pending swaps; but whether a backrun is crowded, or must be withdrawn, depends
on every pending swap. Each replica therefore also reads the whole mempool subject
(services/detect/peers.py: decode and path only, no search), booked in stream order so its
crowding decisions are those of one detect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial
from typing import Any

from mev_common import metrics, subjects
from mev_common.amm.backrun import AppliedSwap
from mev_common.amm.cycles import CycleIndex
from mev_common.bus import Envelope
from mev_common.chain.contracts import ChainContracts, TokenInfo
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool
from mev_common.gc_watch import settle_heap
from mev_common.message_fast import construct
from mev_common.messages import Block, Opportunity, PendingTx, Withdrawal
from mev_common.runtime import Check, Runtime
from mev_common.stage import Consume, Stage, run_stage

from services.detect import block_path, index_steps, pending_path
from services.detect.feed_gap import FeedGap, book_skipped, watch_reconnects
from services.detect.health import pools_check
from services.detect.loader import fetch_pools, fetch_tokens
from services.detect.peers import PeerReader
from services.detect.pending_book import PendingBook
from services.detect.pending_order import booked_block, effective_tip
from services.detect.pending_swaps import PendingSwap, apply_pending
from services.detect.pending_v3 import V3Routers
from services.detect.rate_screen import lay_out_each
from services.detect.registry import PoolRegistry, after_snapshot
from services.detect.search import Found, SearchStats, search
from services.detect.slicing import SLICE_S, finish
from services.detect.v3_loader import fetch_v3

log = logging.getLogger("mev.detect")
REPLAY_S = 10.0  # read the block stream from this far back, to cover the load


async def main(rt: Runtime) -> None:
    await run_stage(rt, start)


async def start(stage: Stage, contracts: ChainContracts) -> Consume[PendingTx]:
    """Blocks from a few seconds back (buffered during the load), the pools loaded, the
    peers' pending swaps followed when replicas share the mempool; then the mempool."""
    detector = Detector(stage.rt, stage.rpc, contracts)
    stage.spawn(watch_reconnects(stage.rt.bus, stage.rt.stop, detector.feed), "feed-gap")
    await stage.follow_blocks(detector.on_block, replay_s=REPLAY_S)
    await detector.load()
    if stage.settings.services.detect.replicas > 1:
        detector.peers = peers = PeerReader(detector)
        for listen in peers.listens():  # the replicas ask each other (detect/peer_bets.py)
            await stage.listen(*listen)
        subject = subjects.mempool(stage.rt.chain_id)
        peers.floor = await stage.follow_new(subject, PendingTx, peers.on_read)
    concurrency = stage.settings.performance.detect_concurrency
    return Consume("detect", PendingTx, detector.on_pending, concurrency, batched=True)


class Detector:
    def __init__(self, rt: Runtime, rpc: RpcPool, contracts: ChainContracts) -> None:
        self.rt = rt
        self.rpc = rpc
        self.contracts = contracts
        self.strategies = rt.settings.strategies
        deny = rt.settings.detect
        self.registry = PoolRegistry(
            factories={d.factory: (d.name, d.fee_bps) for d in contracts.dexes},
            deny_tokens=frozenset(deny.deny_tokens),
            deny_pools=frozenset(deny.deny_pools),
        )
        self.deadline_blocks = deny.deadline_blocks
        self.tokens: dict[str, TokenInfo] = {}
        self.index = CycleIndex(())
        self.backrun_index = self.index  # a V2 victim's backrun cycles (V2_VICTIMS_V2_CYCLES_ONLY)
        self.pair_index: dict[str, dict[tuple[str, str], str]] = {}
        self.head: Block | None = None
        self.head_seen_s = 0.0  # when ingest saw our head (its Mev-Seen-Ns): booked_block
        self.loaded = False
        self.buffer: list[Envelope[Block]] = []
        self.stats = SearchStats()
        self.left_open: list[Found] = []  # the last block search's finds, searched again next
        self.block_slice_s: float | None = SLICE_S  # None: a live block's search in one pass
        self.pending = PendingBook()
        # the pending book may miss swaps (a gap in the mempool feed): trades held until a
        # block mined after it, two block times at most (services/detect/feed_gap.py)
        self.feed = FeedGap(max_hold_s=2 * rt.settings.chain.block_time_s)
        self.skipped: list[PendingTx] = []  # pending swaps acked while loading (feed_gap.skip)
        self.recheck = True  # check the book's nonces at the next live block (detect/gap.py)
        self.checks: set[asyncio.Future[None]] = set()  # those checks in flight
        self.peers: PeerReader | None = None  # replicas: the whole mempool, read ahead
        self.crowded = 0
        self.withdrawn = 0
        self.published = 0
        self.pending_with_opportunity = 0
        self.dex_by_router = {d.router: d for d in contracts.dexes if d.router}
        self.v3_routers = V3Routers(contracts.v3_dexes)  # pending SwapRouter swaps
        # labelled children looked up once: `labels()` costs ~10 µs a call on the hot path
        self.processed = metrics.TRANSACTIONS_PROCESSED.labels(stage="detect")
        self.withdrawn_metric = metrics.OPPORTUNITIES_DROPPED.labels(reason="backrun_withdrawn")
        self.below_min_metric = metrics.OPPORTUNITIES_DROPPED.labels(reason="below_min_profit")
        latency = metrics.DETECTION_LATENCY
        self.latency = {t: latency.labels(trigger=t) for t in ("block", "pending")}
        self.block_hops = [  # where a block trigger's time goes: arrival, then state + search
            metrics.HOP_LATENCY.labels(hop=h)
            for h in ("detect_block_arrive", "detect_block_search")
        ]
        self.pending_arrive = metrics.HOP_LATENCY.labels(hop="detect_pending_arrive")
        rt.add_check("contracts", lambda: Check(True, f"executor {contracts.executor}"))
        rt.add_check("pools", lambda: pools_check(self))

    # -- state ---------------------------------------------------------------------------
    async def load(self) -> None:
        """`_load_once` until it succeeds: an RPC outage at start or during a reload is waited
        out with backoff (counted, visible in the rpc health check), never the end of detect."""
        delay = 0.2
        while not self.rt.stop.is_set():
            try:
                await self._load_once()
                return
            except RpcError as exc:
                metrics.ERRORS.labels(kind="detect_load").inc()
                log.warning("pool load failed, retrying", extra={"fields": {"error": str(exc)}})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.rt.stop.wait(), timeout=delay)
                delay = min(delay * 2, 5.0)

    async def _load_once(self) -> None:
        """Snapshot every pool at the current head, then apply the blocks buffered meanwhile."""
        self.loaded, first = False, self.registry.block_number == 0
        started = time.perf_counter()
        pools, read = await fetch_pools(self.rpc, self.contracts.dexes)  # at latest, checked
        number = read.number
        tokens = sorted({t for p, _ in pools for t in (p.token0, p.token1)})
        self.tokens = await fetch_tokens(self.rpc, tokens)
        # a pool whose token has no decimals() cannot be priced: leave it out
        tradable = [(p, d) for p, d in pools if p.token0 in self.tokens and p.token1 in self.tokens]
        chain = self.rt.settings.chain
        # V3 loading reads at a block number, which a latest-only RPC (HyperEVM) refuses:
        # there detect searches V2 pools only until the V3 loader reads at `latest`.
        v3 = [] if chain.latest_state_only else await fetch_v3(
            self.rpc, self.contracts.v3_dexes, list(self.tokens), number,
            self.contracts.start_block, chain.max_logs_block_range, self.contracts.executor,
        )  # fmt: skip
        self.registry.load(tradable, number, read.hash, v3)
        self.rebuild_index()
        # a V3 victim's cycles laid out now, not at its first trigger (rate_screen.py): ~0.2 s
        # here, so not at a rebuild within a live block, which lays them out lazily instead
        lay_out_each(self.index, self.registry.all_pools, self.registry.v3.pools)
        self.loaded = True
        log.info(
            "pools loaded",
            extra={
                "fields": {
                    "block": number,
                    "pools": len(self.registry.pools),
                    "v3_pools": len(self.registry.v3.pools),
                    "cycles": len(self.index.cycles),
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                }
            },
        )
        buffered, self.buffer = self.buffer, []
        held = after_snapshot([env.message for env in buffered], number, read.hash)
        for env in buffered[len(buffered) - len(held) :]:
            await self.on_block(env, live=False)
        await book_skipped(self)
        settle_heap(whole=first)  # a reload: what came since the last freeze (gc_watch.py)

    def rebuild_index(self) -> None:
        """The indexes over the pools held now, in one pass (services/detect/index_steps.py)."""
        index_steps.install(self, finish(index_steps.build(self.registry, self.contracts.weth)))

    # -- triggers ------------------------------------------------------------------------
    async def on_block(self, env: Envelope[Block], live: bool = True) -> None:
        """`live` is False for blocks replayed after a (re)load (services/detect/block_path.py).
        Whichever path took it (applied, replayed, a reload's snapshot, the snapshot's own), a
        block our state now holds may close a gap in the mempool feed (feed_gap.py)."""
        await block_path.on_block(self, env, live)
        if self.loaded and self.registry.block_number >= env.message.number:
            self.feed.on_block(env.message.timestamp, env.seen_ns / 1e9)

    async def on_pending(self, env: Envelope[PendingTx]) -> None:
        if self.peers is None:
            await pending_path.on_pending(self, env)
            return
        try:
            await pending_path.on_pending(self, env)
        finally:  # decided: a peer replica may ask (services/detect/peer_bets.py)
            await self.peers.bets.decided(env.message.hash, env.seq)

    async def book(
        self, tx: PendingTx, swap: PendingSwap, head: Block, seq: int = 0
    ) -> tuple[AppliedSwap | None, int]:
        """Book a pending swap (at `booked_at`), withdrawing the backruns it now goes ahead
        of; (its effect on the pools, None if it reverts there; its tip)."""
        chain = self.rt.settings.chain
        applied = apply_pending(self, swap, head.timestamp + int(chain.block_time_s))
        tip = effective_tip(tx, head.base_fee_per_gas)
        touched = applied.pools if applied is not None else {}
        self.pending.add(tx.hash, touched, tip, self.booked_at(head), tx.sender, tx.nonce, tx, seq)
        for opp_id in self.pending.doomed_by(tx.hash, tip, touched, seq):
            await self.withdraw(
                opp_id, f"pending {tx.hash} (tip {tip}) goes first through its pools"
            )
        return applied, tip

    def booked_at(self, head: Block) -> int:
        """The block a pending swap seen now at `head` is booked at: ours, or the chain's by
        the clock when ours lags (pending_order.`booked_block`). A replica's reader books by
        it too (peers.py): booked at its head, replicas aged swaps out after a NATS outage by
        the backlog of blocks one detect keeps them through, and decided otherwise."""
        chain = self.rt.settings.chain
        return booked_block(head.number, self.head_seen_s, time.time(), chain.block_time_s)

    async def is_crowded(
        self, victim: str, tip: int, pools: tuple[str, ...], stacking: bool, seq: int
    ) -> str | None:
        """Why a backrun would be crowded (PendingBook.crowded); a replica asks its peers about
        swaps only their decisions exempt (services/detect/peers.py)."""
        if self.peers is None:
            return self.pending.crowded(victim, tip, pools, stacking)
        return await self.peers.crowded(victim, tip, pools, stacking, seq)

    async def withdraw(self, opportunity_id: str, reason: str) -> None:
        """Tell submit not to send (or to cancel) a backrun that will now revert."""
        # built unvalidated (message_fast.construct): our own id and chain id, a plain reason
        values = {"opportunity_id": opportunity_id, "chain_id": self.rt.chain_id, "reason": reason}
        message = construct(Withdrawal, values)
        await self.rt.bus.publish_core(subjects.withdrawals(self.rt.chain_id), message)
        self.withdrawn += 1
        self.withdrawn_metric.inc()

    def search(self, *args: Any, **kwargs: Any) -> list[Found]:
        """`search`, counted (`count_search`)."""
        stats = SearchStats()
        found = search(*args, stats=stats, **kwargs)
        self.count_search(stats)
        return found

    def count_search(self, stats: SearchStats) -> None:
        """One search's counts into the totals, its below-minimum drops into the metric too."""
        self.stats.add(stats)
        if stats.below_min_profit:
            self.below_min_metric.inc(stats.below_min_profit)

    async def publish(
        self,
        opportunities: list[Opportunity],
        env: Envelope[Block] | Envelope[PendingTx],
        trigger: str | None,
    ) -> None:
        """Block triggers (an ordered reader, nothing acked): publish all at once and await
        every ack, then time the trigger. A pending swap (the batched mempool consumer): each
        publish is sent now and its ack deferred to the consume loop, which awaits its batch's
        acks together before acking the inputs; the trigger is timed when its last ack is in."""
        if trigger == "pending":
            sends = [await self._publish_later(opp, env) for opp in opportunities]
            for send in sends:
                env.defer(send)
            self.published += len(sends)
            if sends:
                sends[-1].add_done_callback(partial(self._timed, env.seen_ns, trigger))
            else:
                self._timed(env.seen_ns, trigger, None)
            return
        awaited = [
            self.rt.bus.publish(
                subjects.opportunities(self.rt.chain_id, opp.strategy),
                opp,
                msg_id=opp.id,
                trace=env.trace,
                seen_ns=env.seen_ns,
            )
            for opp in opportunities
        ]
        if len(awaited) == 1:  # a gather's task costs ~30 µs a trigger
            await awaited[0]
        elif awaited:
            await asyncio.gather(*awaited)
        self.published += len(opportunities)
        self._timed(env.seen_ns, trigger, None)

    async def _publish_later(self, opp: Opportunity, env: Envelope[Any]) -> Any:
        return await self.rt.bus.publish_later(
            subjects.opportunities(self.rt.chain_id, opp.strategy),
            opp,
            msg_id=opp.id,
            trace=env.trace,
            seen_ns=env.seen_ns,
        )

    def _timed(self, seen_ns: int, trigger: str | None, done: asyncio.Future[None] | None) -> None:
        """Seen → published (acked) for a live trigger; counted as processed either way.
        A failed publish is neither: its input is nak'd and counted when it succeeds."""
        if done is not None and (done.cancelled() or done.exception() is not None):
            return
        if trigger is not None:
            self.latency[trigger].observe(max(0.0, (time.time_ns() - seen_ns) / 1e9))
        self.processed.inc()
