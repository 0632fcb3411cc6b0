"""Scenario 1, the bus floor: one JetStream hop with raw nats-py, and the same hop through our
bus module (Bus.publish + PullConsumer), for our two typical payloads.

Why both sides in one process on one server: the ratio is then the cost our module adds
(pydantic encode, headers, decode and validation, a task per message, the ack policy), not the
machine. Raw nats-py moves bytes only; that is the floor every stage sits on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import nats.errors
from mev_common.bus import Bus, Envelope
from mev_common.consumer import PullConsumer
from mev_common.messages import encode
from mev_common.subjects import (
    HEADER_MSG_ID,
    HEADER_SEEN_NS,
    HEADER_TRACE,
    ConsumerSpec,
    StreamSpec,
)
from mev_ops.nats_server import start_embedded_nats
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import BaseModel

from bench.pacing import paced
from bench.results import Row, ScenarioResult
from bench.samples import opportunity, pending_tx
from bench.stats import RunStats, ratio, run_stats, summarize, summarize_values

KEY = "bus_floor"
TITLE = "Bus floor: one JetStream hop"
STREAM = "BENCH"
BATCH = 16  # our PullConsumer's default concurrency: both sides fetch the same batch
RATE = 1_000.0  # msg/s for the latency runs (TOOLCHAIN's reference point)
DEADLINE_S = 60.0


def _headers(msg_id: str) -> dict[str, str]:
    return {HEADER_MSG_ID: msg_id, HEADER_TRACE: msg_id, HEADER_SEEN_NS: str(time.time_ns())}


async def raw_consume(
    bus: Bus, subject: str, n: int, out: list[float], deadline_s: float = DEADLINE_S
) -> float:
    """Pull and ack n messages of stream BENCH with nats-py alone; latency (ms) from
    Mev-Seen-Ns into `out`. Returns the seconds until the last one (or the deadline)."""
    durable = f"raw-{uuid.uuid4().hex[:8]}"
    config = ConsumerConfig(
        durable_name=durable, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=BATCH * 4
    )
    sub = await bus.js.pull_subscribe(subject, durable=durable, stream=STREAM, config=config)
    started = time.perf_counter()
    deadline = started + deadline_s
    got = 0
    try:
        while got < n and time.perf_counter() < deadline:
            try:
                msgs = await sub.fetch(batch=BATCH, timeout=0.5)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                seen = int((msg.headers or {}).get(HEADER_SEEN_NS, "0"))
                out.append((time.time_ns() - seen) / 1e6)
                await msg.ack()
            got += len(msgs)
    finally:
        await sub.unsubscribe()
    return time.perf_counter() - started


async def _ours_consume(
    bus: Bus, subject: str, model: type[BaseModel], n: int, out: list[float]
) -> float:
    """The same through PullConsumer: decode, validate, handler, ack by the loop's policy."""
    stop = asyncio.Event()
    started = time.perf_counter()

    async def handler(env: Envelope[Any]) -> None:
        out.append((time.time_ns() - env.seen_ns) / 1e6)
        if len(out) >= n:
            stop.set()

    consumer = PullConsumer(
        bus=bus,
        spec=ConsumerSpec(STREAM, f"ours-{uuid.uuid4().hex[:8]}", subject, BATCH * 4),
        model=model,
        handler=handler,
        stage="bench",
        chain_id=1,
        concurrency=BATCH,
        fetch_timeout_s=0.5,
    )
    task = asyncio.create_task(consumer.run(stop))
    try:
        await asyncio.wait_for(stop.wait(), timeout=DEADLINE_S)
    except TimeoutError:
        stop.set()
    elapsed = time.perf_counter() - started
    await task
    return elapsed


async def _raw_publish(bus: Bus, subject: str, payload: bytes, tag: str, i: int) -> None:
    await bus.js.publish(subject, payload, headers=_headers(f"{tag}-{i}"))


async def _ours_publish(bus: Bus, subject: str, message: BaseModel, tag: str, i: int) -> None:
    msg_id = f"{tag}-{i}"
    await bus.publish(subject, message, msg_id=msg_id, trace=msg_id, seen_ns=time.time_ns())


async def _latency_run(
    pub: Bus, sub: Bus, side: str, message: BaseModel, n: int, rate: float
) -> list[float]:
    """n messages at `rate` while the consumer runs; per-message latency in ms."""
    tag = uuid.uuid4().hex[:10]
    subject = f"bench.{side}.{tag}"
    payload = encode(message)
    out: list[float] = []
    if side == "raw":
        consume = asyncio.create_task(raw_consume(sub, subject, n, out))
        send = lambda i: _raw_publish(pub, subject, payload, tag, i)  # noqa: E731
    else:
        consume = asyncio.create_task(_ours_consume(sub, subject, type(message), n, out))
        send = lambda i: _ours_publish(pub, subject, message, tag, i)  # noqa: E731
    await asyncio.sleep(0.3)  # the consumer is subscribed before the first message
    await paced(n, rate, send)
    await consume
    return out


async def _throughput_run(
    pub: Bus, sub: Bus, side: str, message: BaseModel, n: int
) -> tuple[float, float]:
    """(publish msg/s awaiting each ack, consume msg/s of that backlog with ack per message)."""
    tag = uuid.uuid4().hex[:10]
    subject = f"bench.{side}.{tag}"
    payload = encode(message)
    started = time.perf_counter()
    for i in range(n):
        if side == "raw":
            await _raw_publish(pub, subject, payload, tag, i)
        else:
            await _ours_publish(pub, subject, message, tag, i)
    publish_rate = n / (time.perf_counter() - started)
    out: list[float] = []
    if side == "raw":
        elapsed = await raw_consume(sub, subject, n, out)
    else:
        elapsed = await _ours_consume(sub, subject, type(message), n, out)
    return publish_rate, len(out) / elapsed


async def _measure(tiny: bool) -> ScenarioResult:
    runs, n_latency, n_throughput = (2, 60, 200) if tiny else (5, 1_500, 5_000)
    result = ScenarioResult(KEY, TITLE)
    server = start_embedded_nats()
    pub = sub = None
    try:
        pub = await Bus.connect(server.url, "bench-pub", attempts=3)
        sub = await Bus.connect(server.url, "bench-sub", attempts=3)
        await pub.ensure_streams([StreamSpec(STREAM, ("bench.>",), max_age_s=600)])
        for kind, message in (("PendingTx", pending_tx()), ("Opportunity", opportunity())):
            size = len(encode(message))
            latency: dict[str, list[RunStats]] = {"raw": [], "ours": []}
            rates: dict[str, list[tuple[float, float]]] = {"raw": [], "ours": []}
            for _ in range(runs):
                for side in ("raw", "ours"):  # interleaved: drift hits both sides alike
                    samples = await _latency_run(pub, sub, side, message, n_latency, RATE)
                    latency[side].append(run_stats(samples))
                    result.samples.setdefault(f"{kind} hop {side}", []).extend(samples)
                    rates[side].append(await _throughput_run(pub, sub, side, message, n_throughput))
            raw, ours = summarize(latency["raw"]), summarize(latency["ours"])
            result.rows.append(
                Row(
                    f"{kind} ({size} B) publish→consume at {RATE:,.0f} msg/s",
                    "ms",
                    ours,
                    "raw nats-py",
                    raw,
                    ratio(ours.p95, raw.p95),
                    "ours/raw p95",
                    f"{n_latency} msgs × {runs} runs; ours adds encode+validate",
                )
            )
            for index, what in ((0, "publish, ack awaited"), (1, f"consume, fetch {BATCH}+ack")):
                ours_rate = summarize_values([r[index] for r in rates["ours"]])
                raw_rate = summarize_values([r[index] for r in rates["raw"]])
                result.rows.append(
                    Row(
                        f"{kind} throughput: {what}",
                        "msg/s",
                        ours_rate,
                        "raw nats-py",
                        raw_rate,
                        ratio(ours_rate.p50, raw_rate.p50),
                        "ours/raw",
                        f"{n_throughput} msgs × {runs} runs",
                    )
                )
    finally:
        for bus in (pub, sub):
            if bus is not None:
                await bus.close()
        server.cleanup()
    return result


def run(tiny: bool = False) -> ScenarioResult:
    return asyncio.run(_measure(tiny))
