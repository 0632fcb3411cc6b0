"""Where the time after a NATS fault went: the first message each pipeline stream stored after
the fault (its JetStream timestamp), read back after the run. Blocks and pending txs are
ingest's, opportunities detect's, bundles simulate's; the ledger's first bundle is submit's."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import threading
import time

import nats
import nats.errors
from mev_common.elections import CONSUMER_LEADER_ELECTED, LEADER_ELECTED
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import ServiceUnavailableError

PIPELINE = {
    "BLOCKS": "mev.*.blocks",
    "MEMPOOL": "mev.*.mempool",
    "OPPORTUNITIES": "mev.*.opportunities.>",
    "BUNDLES": "mev.*.bundles",
}

TIMELINE = bool(os.environ.get("CHAOS_TIMELINE"))


async def first_stored_after(urls: list[str], fault_unix: float) -> dict[str, float | None]:
    """Seconds from `fault_unix` to the first message stored in each pipeline stream."""
    nc = await nats.connect(servers=urls, connect_timeout=2)
    since = dt.datetime.fromtimestamp(fault_unix, dt.UTC)
    out: dict[str, float | None] = {}
    try:
        js = nc.jetstream(timeout=5)
        for stream, subject in PIPELINE.items():
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since.isoformat()
            )
            out[stream] = await _first_stamp(js, stream, subject, config, fault_unix)
        if TIMELINE:  # every stored message from 8 s before to 20 s after, for a closer look
            for stream, subject in PIPELINE.items():
                start = since - dt.timedelta(seconds=8)
                config = ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start.isoformat()
                )
                sub = await js.pull_subscribe(subject, stream=stream, config=config)
                with contextlib.suppress(TimeoutError):
                    msgs = await sub.fetch(400, timeout=2)
                    marks = [m.metadata.timestamp.timestamp() - fault_unix for m in msgs]
                    print(stream, " ".join(f"{t:.1f}" for t in marks if t < 20))
                await sub.unsubscribe()
    finally:
        await nc.close()
    return out


async def _first_stamp(
    js: JetStreamContext, stream: str, subject: str, config: ConsumerConfig, fault_unix: float
) -> float | None:
    """The first stored message's time after the fault. A diagnostic only: an ephemeral consumer
    on an R3 stream whose leader was just killed may answer 503 until its own leader is elected,
    so that is retried a few times, then reported as none rather than failing the chaos test."""
    for _ in range(5):
        sub = await js.pull_subscribe(subject, stream=stream, config=config)
        try:
            msgs = await sub.fetch(1, timeout=2)
            return float(msgs[0].metadata.timestamp.timestamp() - fault_unix)
        except TimeoutError:
            return None
        except ServiceUnavailableError:
            await asyncio.sleep(1)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    return None


def stage_report(urls: list[str], fault_unix: float) -> str:
    """A printed diagnostic: a cluster still electing after a kill must not fail the test."""
    try:
        times = asyncio.run(first_stored_after(urls, fault_unix))
    except Exception as exc:  # reported; the assertions are elsewhere
        return f"not read ({type(exc).__name__})"
    return ", ".join(
        f"{name.lower()} +{took:.1f} s" if took is not None else f"{name.lower()} none"
        for name, took in times.items()
    )


async def leaders(urls: list[str]) -> dict[str, str]:
    """Which node leads each pipeline stream and each durable consumer on it."""
    nc = await nats.connect(servers=urls, connect_timeout=2)
    out: dict[str, str] = {}
    try:
        js = nc.jetstream(timeout=5)
        for stream in PIPELINE:
            try:
                info = await js.stream_info(stream)
                consumers = await js.consumers_info(stream)
            except nats.errors.TimeoutError:  # for the log only: an election may be under way
                out[stream] = "no answer"
                continue
            out[stream] = str(info.cluster.leader if info.cluster else None)
            for consumer in consumers:
                if consumer.config.durable_name:
                    out[consumer.name] = str(consumer.cluster.leader if consumer.cluster else None)
    finally:
        await nc.close()
    return out


class ElectionLog:
    """Every leader-elected advisory (stream and consumer) seen on `urls`, with the wall time it
    arrived: when NATS itself had a leader again after a kill. nats-server 2.15 elects each raft
    group the dead node led 4-9 s after the last heartbeat its followers had (uniform, not
    configurable: server/raft.go `minElectionTimeout`/`maxElectionTimeout`), each group on its
    own timer; a leader kill's resumption is that plus ours. Runs its own loop in a thread."""

    def __init__(self, urls: list[str]) -> None:
        self._urls = urls
        self._seen: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> ElectionLog:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("election advisories not subscribed within 10 s")
        return self

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        nc = await nats.connect(servers=self._urls, connect_timeout=2)

        async def seen(msg: Msg) -> None:
            with self._lock:
                self._seen.append((time.time(), msg.subject.split("LEADER_ELECTED.", 1)[-1]))

        try:
            await nc.subscribe(LEADER_ELECTED, cb=seen)
            await nc.subscribe(CONSUMER_LEADER_ELECTED, cb=seen)
            await nc.flush()
            self._ready.set()
            await self._stop.wait()
        finally:
            await nc.close()

    def after(self, since_unix: float) -> list[tuple[float, str]]:
        """(seconds after `since_unix`, group) of each election seen since then."""
        with self._lock:
            return [(at - since_unix, group) for at, group in self._seen if at >= since_unix]

    def last_after(self, since_unix: float) -> float | None:
        """Seconds from `since_unix` to the last election seen since then, if any."""
        times = [took for took, _ in self.after(since_unix)]
        return max(times) if times else None

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)
