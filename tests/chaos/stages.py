"""Where the time after a NATS fault went: the first message each pipeline stream stored after
the fault (its JetStream timestamp), read back after the run. Blocks and pending txs are
ingest's, opportunities detect's, bundles simulate's; the ledger's first bundle is submit's."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os

import nats
import nats.errors
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
