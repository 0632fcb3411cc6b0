"""A running service's presence in the control KV: its heartbeat (health, ports, last error,
consumer lag) and the watch for `mev-bot --shutdown-graceful`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import orjson

from mev_common import lifecycle_keys as keys
from mev_common import metrics
from mev_common.chain import budget
from mev_common.control import ensure_control_bucket
from mev_common.logs import LastError
from mev_common.settings import ServicePorts
from mev_common.subjects import consumer_specs

if TYPE_CHECKING:
    from mev_common.runtime import Runtime

log = logging.getLogger("mev.runtime")


def service_version() -> str:
    try:
        return version("mev-pipeline")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def health_body(rt: Runtime, ok: bool, checks: dict[str, Any]) -> dict[str, Any]:
    """The /health JSON; the heartbeat in the control KV carries the same fields."""
    return {
        "service": rt.service,
        "instance": rt.instance,
        "version": service_version(),
        "status": "ok" if ok else "unhealthy",
        "uptime_s": round(time.time() - rt.started_at, 1),
        "ready": rt.ready,
        "checks": checks,
        "rpc_calls_last_min": budget.process_budget().used(),
        "rpc_budget_per_min": budget.process_budget().per_minute,
    }


async def heartbeat_loop(rt: Runtime, ports: ServicePorts, last_error: LastError) -> None:
    """Put this instance's health in the control KV every few seconds: `mev-bot status` reads
    every instance from any container, without knowing hosts or ports."""
    key = keys.instance_key(rt.chain_id, rt.service, rt.instance)
    kv = None
    while True:
        try:
            ok, checks = rt.health()
            beat = {
                **health_body(rt, ok, checks),
                "ts": time.time(),
                "host": socket.gethostname(),
                "health_port": ports.health_port,
                "metrics_port": ports.metrics_port,
                "last_error": last_error.last,
            }
            kv = kv or await ensure_control_bucket(rt.bus.js, rt.settings.nats.replicas)
            await kv.put(key, orjson.dumps(beat, default=str))
        except Exception:  # a broker outage must not end the service; retry next beat
            kv = None
        await _export_consumer_lag(rt)
        await asyncio.sleep(keys.HEARTBEAT_INTERVAL_S)


async def _export_consumer_lag(rt: Runtime) -> None:
    """mev_bot_consumer_lag of this stage's shared durable consumer, for the lag alert, and
    mev_bot_consumer_stalled of every consumer this process runs."""
    spec = consumer_specs(rt.settings).get(rt.service)
    if spec is not None:
        with contextlib.suppress(Exception):  # not declared yet, or the broker is away
            info = await rt.bus.js.consumer_info(spec.stream, spec.durable)
            lag = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            metrics.CONSUMER_LAG.labels(stream=spec.stream, consumer=spec.durable).set(lag)
            if rt.service in rt.consumers:
                rt.consumers[rt.service].stall.observe(lag)
    for consumer in rt.consumers.values():
        stalled = consumer.stall.stalled()
        metrics.CONSUMER_STALLED.labels(consumer=consumer.spec.durable).set(1 if stalled else 0)


async def heartbeat_clear(rt: Runtime) -> None:
    """A clean exit removes the heartbeat: `--shutdown-graceful` waits for exactly that."""
    with contextlib.suppress(Exception):
        kv = await ensure_control_bucket(rt.bus.js, rt.settings.nats.replicas)
        await asyncio.wait_for(
            kv.delete(keys.instance_key(rt.chain_id, rt.service, rt.instance)), timeout=2.0
        )


async def shutdown_watch(rt: Runtime, stop_requested: asyncio.Event) -> None:
    """`mev-bot --shutdown-graceful` puts the shutdown key: treat a put made after this watch
    began like SIGTERM. Values present at start are old requests and are skipped."""
    while True:
        try:
            kv = await ensure_control_bucket(rt.bus.js, rt.settings.nats.replicas)
            generation = rt.bus.generation
            watcher = await kv.watch(keys.shutdown_key(rt.chain_id))
            caught_up = False
            while rt.bus.generation == generation:  # a reconnect re-creates the watch
                try:
                    entry = await watcher.updates(timeout=1.0)
                except TimeoutError:  # nats.errors.TimeoutError subclasses it
                    continue
                if entry is None:
                    caught_up = True
                elif caught_up and entry.operation is None:
                    log.info("shutdown requested through the control KV")
                    stop_requested.set()
                    return
            with contextlib.suppress(Exception):
                await watcher.stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("shutdown watch failed, retrying", extra={"fields": {"error": repr(exc)}})
            await asyncio.sleep(1.0)
