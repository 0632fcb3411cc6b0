"""Control commands: put a key in the `mev-control` KV, then wait for the services to apply it.

A command returns 0 only when the service that owns the key has acknowledged this exact
revision (its ack key holds a revision >= ours): an emergency stop that no submit has seen is
not a stop, and the operator must be told. Every live instance of that service (by heartbeat)
must acknowledge; with no heartbeat at all, the first acknowledgement counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass

import nats.errors
from nats.js.kv import KeyValue

from mev_common import control
from mev_common.ops import keys
from mev_common.ops.instances import BrokerUnreachable, connect, control_bucket, read_instances
from mev_common.settings import Settings


@dataclass(frozen=True)
class ControlCommand:
    """One runbook flag: which key it writes, which service applies it, what to say."""

    key: str
    acked_by: str
    done: str


EMERGENCY_STOP = ControlCommand(control.EMERGENCY_STOP, "submit", "emergency stop active")
RESUME = ControlCommand(control.EMERGENCY_STOP, "submit", "emergency stop cleared: sends resume")
RPC_RATE = ControlCommand(control.RPC_RATE_FACTOR, "ingest", "rpc rate factor set")
RPC_POOL = ControlCommand(control.RPC_POOL_SIZE, "ingest", "rpc pool size set")
RESET_NONCE = ControlCommand(control.NONCE_RESET, "submit", "nonce reset")


def say(text: str) -> None:
    print(f"mev-bot: {text}", flush=True)


def fail(text: str) -> int:
    print(f"mev-bot: {text}", file=sys.stderr, flush=True)
    return 1


def run_control(settings: Settings, command: ControlCommand, value: str, timeout_s: float) -> int:
    try:
        return asyncio.run(_put_and_wait(settings, command, value, timeout_s))
    except BrokerUnreachable as exc:
        return fail(str(exc))


async def _put_and_wait(
    settings: Settings, command: ControlCommand, value: str, timeout_s: float
) -> int:
    chain = settings.chain.chain_id
    nc = await connect(settings)
    try:
        kv = await control_bucket(nc)
        expected = {
            i.key_instance
            for i in await read_instances(kv, chain)
            if i.service == command.acked_by and i.fresh
        }
        # Watch before the put, so an acknowledgement cannot slip between the two.
        watcher = await kv.watch(f"{chain}.ack.{command.key}.*")
        try:
            started = time.monotonic()
            revision = await kv.put(control.control_key(chain, command.key), value.encode())
            acked = await _collect_acks(watcher, command, revision, expected, timeout_s)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()
        elapsed = time.monotonic() - started
        where = f"{chain}.{command.key}={value} (revision {revision})"
        if acked and expected <= acked:
            say(
                f"{command.done}: {where}; acknowledged by {command.acked_by} "
                f"{', '.join(sorted(acked))} in {elapsed:.3f}s"
            )
            return 0
        missing = sorted(expected - acked) or [f"any {command.acked_by} instance"]
        return fail(
            f"{where} is set, but not acknowledged within {timeout_s:g}s by "
            f"{', '.join(missing)}: is {command.acked_by} running? (`mev-bot status`)"
        )
    finally:
        await nc.close()


async def _collect_acks(
    watcher: KeyValue.KeyWatcher,
    command: ControlCommand,
    revision: int,
    expected: set[str],
    timeout_s: float,
) -> set[str]:
    """Instances whose ack key reached `revision`, until all expected acked or the timeout."""
    acked: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            entry = await watcher.updates(timeout=min(left, 0.5))
        except nats.errors.TimeoutError:
            continue
        if entry is None or entry.operation is not None:
            continue
        try:
            applied = int((entry.value or b"0").decode())
        except ValueError:
            continue
        if applied >= revision:
            acked.add(entry.key.rsplit(".", 1)[1])  # ack keys spell instances without dots
            if acked >= expected:
                break
    return acked


def run_shutdown(settings: Settings, timeout_s: float | None) -> int:
    """--shutdown-graceful: every live instance drains and exits 0 (its heartbeat disappears)."""
    wait_s = timeout_s or settings.services.shutdown_timeout_s + 5.0
    try:
        return asyncio.run(_shutdown(settings, wait_s))
    except BrokerUnreachable as exc:
        return fail(str(exc))


async def _shutdown(settings: Settings, timeout_s: float) -> int:
    chain = settings.chain.chain_id
    nc = await connect(settings)
    try:
        kv = await control_bucket(nc)
        live = {i.key_suffix for i in await read_instances(kv, chain) if i.fresh}
        if not live:
            return fail(f"no running service instance of chain {chain} (no fresh heartbeat)")
        watcher = await kv.watch(keys.instances_filter(chain))
        try:
            await kv.put(keys.shutdown_key(chain), str(time.time_ns()).encode())
            say(f"shutdown requested: {len(live)} instances draining")
            gone = await _collect_exits(watcher, chain, live, timeout_s)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()
        if gone >= live:
            say(f"all {len(live)} instances drained and exited: {', '.join(sorted(live))}")
            return 0
        return fail(
            f"still running after {timeout_s:g}s: {', '.join(sorted(live - gone))} "
            "(send SIGTERM, or `docker stop`)"
        )
    finally:
        await nc.close()


async def _collect_exits(
    watcher: KeyValue.KeyWatcher, chain: int, live: set[str], timeout_s: float
) -> set[str]:
    prefix = f"{chain}.instances."
    gone: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while gone < live and (left := deadline - time.monotonic()) > 0:
        try:
            entry = await watcher.updates(timeout=min(left, 0.5))
        except nats.errors.TimeoutError:
            continue
        if entry is not None and entry.operation is not None:  # DEL or PURGE: a clean exit
            suffix = entry.key.removeprefix(prefix)
            if suffix in live:
                gone.add(suffix)
                say(f"  {suffix} exited")
    return gone
