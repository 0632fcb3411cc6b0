"""Control commands: put a key in the `mev-control` KV, then wait for the services to apply it.

A command returns 0 only when the service that owns the key has acknowledged this exact
revision (its ack key holds a revision >= ours): an emergency stop that a running submit has
not seen is not a stop, and the operator must be told. Every live instance of those services
(by heartbeat) must acknowledge; with no heartbeat at all, the first acknowledgement counts. A
service that rejects the value (acks it as rejected) makes the command fail with its reason.
One exception, the emergency stop with no submit running at all (no fresh heartbeat, no
submit lease held: mev_ops.stop_check): nothing can send, and a submit that starts reads the
flag before it takes its lease and refuses to trade, so the stop holds: said plainly, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass

import nats.errors
from mev_common import control
from mev_common import lifecycle_keys as keys
from mev_common.settings import Settings
from nats.js.kv import KeyValue

from mev_ops.instances import BrokerUnreachable, connect, control_bucket, read_instances
from mev_ops.stop_check import stop_held_without_submit


@dataclass(frozen=True)
class ControlCommand:
    """One runbook flag: which key it writes, which service applies it, what to say."""

    key: str
    acked_by: tuple[str, ...]
    done: str

    @property
    def services(self) -> str:
        return "/".join(self.acked_by)


RPC_HOLDERS = ("ingest", "detect", "simulate", "submit")  # every service with an RpcPool
EMERGENCY_STOP = ControlCommand(control.EMERGENCY_STOP, ("submit",), "emergency stop active")
RESUME = ControlCommand(control.EMERGENCY_STOP, ("submit",), "emergency stop cleared: sends resume")
RPC_RATE = ControlCommand(control.RPC_RATE_FACTOR, RPC_HOLDERS, "rpc rate factor set")
RPC_POOL = ControlCommand(control.RPC_POOL_SIZE, RPC_HOLDERS, "rpc pool size set")
RESET_NONCE = ControlCommand(control.NONCE_RESET, ("submit",), "nonce reset")


def say(text: str) -> None:
    print(f"mev-bot: {text}", flush=True)


def fail(text: str) -> int:
    print(f"mev-bot: {text}", file=sys.stderr, flush=True)
    return 1


def run_control(settings: Settings, command: ControlCommand, value: str, timeout_s: float) -> int:
    """Put `value` (checked by the key's rule first: a value no service can apply is refused
    here, exit 2, and the KV is left as it was) and wait for the acknowledgements."""
    try:
        value = control.validate(command.key, value)
    except control.ControlValueError as exc:
        print(f"mev-bot: {exc}; nothing was changed", file=sys.stderr, flush=True)
        return 2
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
            if i.service in command.acked_by and i.fresh
        }
        # Watch before the put, so an acknowledgement cannot slip between the two.
        watcher = await kv.watch(f"{chain}.ack.{command.key}.*")
        try:
            started = time.monotonic()
            revision = await kv.put(control.control_key(chain, command.key), value.encode())
            acked, rejected = await _collect_acks(watcher, revision, expected, timeout_s)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()
        elapsed = time.monotonic() - started
        where = f"{chain}.{command.key}={value} (revision {revision})"
        if rejected:
            for instance, reason in sorted(rejected.items()):
                print(f"mev-bot: {instance} rejected {where}: {reason}", file=sys.stderr)
            return fail(f"{where} was rejected by {', '.join(sorted(rejected))}")
        if acked and expected <= acked:
            say(
                f"{command.done}: {where}; acknowledged by {command.services} "
                f"{', '.join(sorted(acked))} in {elapsed:.3f}s"
            )
            return 0
        if command is EMERGENCY_STOP and (held := await stop_held_without_submit(nc, kv, chain)):
            say(f"emergency stop set: {held}")  # the runbook's stop holds: nothing can send
            return 0
        missing = sorted(expected - acked) or [f"any {command.services} instance"]
        return fail(
            f"{where} is set, but not acknowledged within {timeout_s:g}s by "
            f"{', '.join(missing)}: is {command.services} running? (`mev-bot status`)"
        )
    finally:
        await nc.close()


async def _collect_acks(
    watcher: KeyValue.KeyWatcher, revision: int, expected: set[str], timeout_s: float
) -> tuple[set[str], dict[str, str]]:
    """Instances whose ack key reached `revision` (and the reasons of those that rejected
    it), until all expected acked or the timeout."""
    acked: set[str] = set()
    rejected: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            entry = await watcher.updates(timeout=min(left, 0.5))
        except nats.errors.TimeoutError:
            continue
        if entry is None or entry.operation is not None:
            continue
        try:
            applied, reason = control.parse_ack(entry.value)
        except (ValueError, KeyError):
            continue
        if applied >= revision:
            instance = entry.key.rsplit(".", 1)[1]  # ack keys spell instances without dots
            acked.add(instance)
            if reason is not None and applied == revision:
                rejected[instance] = reason
            if acked >= expected:
                break
    return acked, rejected


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
