"""Detect replicas sharing the mempool on a real nats-server: each replica pulls from the one
durable consumer (`detect-<chain>`, batched, as the service does) and reads the whole mempool
subject on its own ordered consumer (services/detect/peers.py), and the replicas ask each other
on core NATS about the swaps they backran (services/detect/peer_bets.py). Every pending swap is
searched exactly once, the replicas' crowding and withdrawal decisions equal one detect's on the
same stream (V3 victims included), and a replica killed mid-stream loses nothing (its unacked
swaps go to the other).

The Detectors are in process over the devnet-like pools (bench.detect_profile) and record what
they publish; the NATS side (stream, shared durable, ordered readers, acks) is real."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import pytest
from mev_common import metrics, subjects
from mev_common.bus import Bus, Envelope
from mev_common.consumer import PullConsumer
from mev_common.messages import PeerAnswer, PeerQuestion, PendingTx
from mev_common.ordered import OrderedReader, subscribe_ordered
from mev_common.subjects import ConsumerSpec, StreamSpec
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy

from bench.swaps import V3_SHARE, ingest_headers
from services.detect import peer_bets, peers
from services.detect.service import Detector
from tests.conftest import NatsEndpoint
from tests.support.replica_detect import (
    RecordingBus,
    decisions,
    recording_detector,
    varied_swaps,
)
from tests.support.submit_world import wait_for
from tests.unit.detect.test_replica_decisions import envelopes, one_detect

CHAIN = 31337
SUBJECT = subjects.mempool(CHAIN)
STREAMS = [
    StreamSpec("MEMPOOL", ("mev.*.mempool",), max_age_s=600),
    StreamSpec("DEAD", ("mev.*.dead.>",), max_age_s=600),
]
N = 300


@pytest.fixture(autouse=True)
def patient_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas, a publisher and nats-server share this test's cores: a trigger may wait
    longer than the service's 50 ms for its reader; the decisions are compared, not latency."""
    monkeypatch.setattr(peers, "READ_WAIT_S", 5.0)


@dataclass
class Replica:
    """One detect replica: its connection, Detector, ordered reader and shared pull consumer."""

    bus: Bus
    detector: Detector
    recorded: RecordingBus
    reader: OrderedReader
    subs: list[Subscription]
    searched: list[str] = field(default_factory=list)  # trigger hashes its handler got
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def processed(self) -> int:
        return self.consumer.processed

    consumer: PullConsumer[PendingTx] = field(init=False)

    async def kill(self) -> None:
        """As a SIGKILL would: the consume loop cancelled, the connection closed, no ack sent."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.bus.nc.close()

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None and not self.task.done():
            await self.task
        await self.reader.unsubscribe()
        for sub in self.subs:
            await sub.unsubscribe()
        await self.bus.close()


async def replica(
    server: NatsEndpoint, name: str, slow: Callable[[], Awaitable[None]] | None = None
) -> Replica:
    bus = await Bus.connect(server.url, name, attempts=3)
    await bus.ensure_streams(STREAMS)
    found, recorded, _ = recording_detector(2)
    assert found.peers is not None
    reader = await subscribe_ordered(
        bus, SUBJECT, PendingTx, found.peers.on_read, "detect", CHAIN,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )  # fmt: skip
    # the replicas ask each other on core NATS, as the service wires it (detect/peer_bets.py)
    found.peers.bets.chain_id = CHAIN
    found.peers.bets.send = partial(ask_on, bus)
    subs = [await bus.subscribe_core(*listen) for listen in found.peers.listens()]
    await bus.nc.flush()  # the server holds both subscriptions before anything is published
    found.peers.floor = int((await bus.js.stream_info("MEMPOOL")).state.last_seq)
    r = Replica(bus, found, recorded, reader, subs)

    async def handle(env: Envelope[PendingTx]) -> None:
        r.searched.append(env.message.hash)
        if slow is not None:
            await slow()
        await found.on_pending(env)

    r.consumer = PullConsumer(
        bus=bus,
        spec=ConsumerSpec("MEMPOOL", f"detect-{CHAIN}", SUBJECT, 64),
        model=PendingTx,
        handler=handle,
        stage="detect",
        chain_id=CHAIN,
        concurrency=8,
        ack_wait_s=1.5,  # a killed replica's swaps come back after 1.5 s
        fetch_timeout_s=0.2,
        batched=True,
    )
    r.task = asyncio.create_task(r.consumer.run(r.stop))
    return r


async def ask_on(bus: Bus, message: PeerQuestion | PeerAnswer) -> None:
    kind = "questions" if isinstance(message, PeerQuestion) else "answers"
    await bus.publish_core(subjects.detect_peers(CHAIN, kind), message)


async def publish(bus: Bus, payloads: list[tuple[str, bytes]], per_s: float = 1500.0) -> None:
    for k, (tx_hash, payload) in enumerate(payloads):
        await bus.js.publish(SUBJECT, payload, headers=ingest_headers(tx_hash))
        if k % 50 == 49:
            await asyncio.sleep(50 / per_s)


async def unacked(bus: Bus) -> int:
    info = await bus.js.consumer_info("MEMPOOL", f"detect-{CHAIN}")
    return int(info.num_ack_pending + info.num_pending)


async def test_two_replicas_search_each_swap_once_and_decide_as_one_detect(
    nats_server: NatsEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the devnet flow's V2:V3 victim mix; a stranger's unreadable and unasked answers on
    the replicas' subject are counted and ignored. A peer's answer may take longer than the
    service's 50 ms here too (a timeout would judge a backrun crowded: `unanswered` says)."""
    monkeypatch.setattr(peer_bets, "ASK_WAIT_S", 5.0)
    _, _, deployment = recording_detector()
    payloads = varied_swaps(deployment, N, seed=31, v3_share=V3_SHARE)
    replicas = [await replica(nats_server, f"detect-{k}") for k in (1, 2)]
    feed = await Bus.connect(nats_server.url, "feed", attempts=3)
    unreadable = metrics.ERRORS.labels(kind="bad_peeranswer")
    before = unreadable._value.get()
    try:
        answers = subjects.detect_peers(CHAIN, "answers")
        await feed.nc.publish(answers, b'{"v": 1, "victim": "0xnot a hash"}')
        forged = PeerAnswer(chain_id=CHAIN, replica="stranger", victim=payloads[0][0], seq=1)
        await feed.publish_core(answers, forged)  # nobody asked: no effect
        await publish(feed, payloads)
        await wait_for(lambda: sum(len(r.searched) for r in replicas) >= N, what="all searched")
        await asyncio.sleep(0.5)  # anything searched twice would show now
        await wait_for(lambda: sum(r.processed for r in replicas) >= N, what="acks")
        assert await unacked(feed) == 0
    finally:
        for r in replicas:
            await r.close()
        await feed.close()
    searched = Counter(h for r in replicas for h in r.searched)
    # counts in == counts out: every swap searched, by exactly one replica, each acked once
    assert set(searched) == {h for h, _ in payloads} and set(searched.values()) == {1}
    assert sum(r.processed for r in replicas) == N
    assert all(r.searched for r in replicas), "both replicas take a share"
    for r in replicas:
        assert r.detector.peers is not None and r.detector.peers.behind == 0
        assert r.detector.peers.ahead.read_seq == N  # every replica read the whole mempool
        assert r.detector.peers.bets.rejected == 0  # the forged answer was not asked for
        assert r.detector.peers.bets.unanswered == 0
    assert unreadable._value.get() - before == 2  # one unreadable answer, read by each
    # what one detect decides on the same stream, in stream order
    single = await one_detect(envelopes(payloads))
    assert single.crowded > 0 and single.withdrawn > 0 and single.standing
    assert decisions([(r.detector, r.recorded) for r in replicas]) == single


async def test_a_replica_killed_mid_stream_loses_no_swap(nats_server: NatsEndpoint) -> None:
    """Replica 2 hangs on its 10th swap, holding its fetched batch unacked, and is killed
    there; those swaps come back to replica 1 after the ack wait, and every swap is searched."""
    _, _, deployment = recording_detector()
    payloads = varied_swaps(deployment, N, seed=32)
    survivor = await replica(nats_server, "detect-1")
    hang = asyncio.Event()

    async def tenth_hangs() -> None:
        if len(doomed.searched) >= 10:
            await hang.wait()  # never set: killed here

    doomed = await replica(nats_server, "detect-2", slow=tenth_hangs)
    feed = await Bus.connect(nats_server.url, "feed", attempts=3)
    try:
        await publish(feed, payloads[: N // 2], per_s=500.0)
        await wait_for(lambda: len(doomed.searched) >= 10, what="replica 2 at work")
        await doomed.kill()
        held = list(doomed.searched)
        await publish(feed, payloads[N // 2 :], per_s=500.0)
        everything = {h for h, _ in payloads}
        await wait_for(lambda: set(survivor.searched + held) >= everything, 30, "all searched")
        await wait_for(lambda: survivor.processed + doomed.consumer.processed >= N)
        assert await unacked(feed) == 0
    finally:
        await survivor.close()
        with contextlib.suppress(Exception):
            await doomed.reader.unsubscribe()
        await feed.close()
    twice = [h for h, k in Counter(survivor.searched + held).items() if k > 1]
    # nothing lost; what was searched twice is what the killed replica held unacked
    assert set(survivor.searched) | set(held) == everything
    assert twice and set(twice) <= set(held)
    assert len(set(survivor.searched)) == len(survivor.searched)  # the survivor: once each
