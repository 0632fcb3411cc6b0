"""The control plane: the `mev-control` KV bucket that `mev-bot` writes and services watch.

Why a KV bucket: it works from any container and from the host, survives restarts (an
emergency stop holds until cleared), and a watcher sees a put within a millisecond. Keys are
per chain (`<chain>.emergency_stop`), so one NATS can serve several chains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from mev_common.subjects import CONTROL_BUCKET

log = logging.getLogger("mev.control")

EMERGENCY_STOP = "emergency_stop"
RPC_RATE_FACTOR = "rpc_rate_factor"
RPC_POOL_SIZE = "rpc_pool_size"
NONCE_RESET = "nonce_reset"
CONTROL_KEYS = (EMERGENCY_STOP, RPC_RATE_FACTOR, RPC_POOL_SIZE, NONCE_RESET)


def control_key(chain_id: int, name: str) -> str:
    return f"{chain_id}.{name}"


def ack_key(chain_id: int, name: str, instance: str) -> str:
    """Where a service records the revision of `name` it has applied: `mev-bot` waits for it."""
    return f"{chain_id}.ack.{name}.{instance.replace('.', '_')}"


async def ensure_control_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """Create the bucket if absent (idempotent; every service may call it at start, and again
    after a reconnect); `replicas` is `nats.replicas`."""
    try:
        return await js.key_value(CONTROL_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=CONTROL_BUCKET, history=16, storage=StorageType.FILE, replicas=replicas
            )
        )
    except nats.js.errors.BadRequestError:  # another replica created it first
        return await js.key_value(CONTROL_BUCKET)


@dataclass
class ControlState:
    """The current value of every control key of one chain, as services use them."""

    emergency_stop: bool = False
    rpc_rate_factor: float = 1.0
    rpc_pool_size: int | None = None
    nonce_reset: str | None = None
    revisions: dict[str, int] = field(default_factory=dict)

    def apply(self, name: str, raw: bytes | None) -> None:
        """Parse one key's new value; a value that does not parse leaves the old one."""
        text = (raw or b"").decode(errors="replace").strip()
        if name == EMERGENCY_STOP:
            self.emergency_stop = text.lower() in {"1", "true", "on", "yes"}
        elif name == RPC_RATE_FACTOR:
            self.rpc_rate_factor = float(text) if text else 1.0
        elif name == RPC_POOL_SIZE:
            self.rpc_pool_size = int(text) if text else None
        elif name == NONCE_RESET:
            self.nonce_reset = text or None


OnChange = Callable[[str, ControlState], Awaitable[None]]


async def watch_control(
    js: JetStreamContext,
    chain_id: int,
    state: ControlState,
    on_change: OnChange,
    stop: asyncio.Event,
    instance: str | None = None,
    acknowledge: frozenset[str] = frozenset(),
    generation: Callable[[], int] | None = None,
) -> None:
    """Apply current values, then every update, until `stop`; rewatch after a broker outage.

    For each key in `acknowledge`, once `on_change` has returned, the entry's revision is put
    at `ack_key(chain, name, instance)`: the operator's command returns when it sees it.
    `generation` (the bus's): when it moves the broker came back, maybe without its store, and
    the watch is made again (nats-py's own resume would wait for the lost stream's sequence)."""
    prefix = f"{chain_id}."
    while not stop.is_set():
        seen = generation() if generation else 0
        try:
            kv = await ensure_control_bucket(js)
            watcher = await kv.watch(f"{prefix}>")
        except (nats.errors.Error, OSError) as exc:
            log.warning("control watch failed, retrying", extra={"fields": {"error": repr(exc)}})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            continue
        try:
            while not stop.is_set() and (generation is None or generation() == seen):
                try:
                    entry = await watcher.updates(timeout=1.0)
                except nats.errors.TimeoutError:
                    continue
                if entry is None:  # end of the initial values
                    continue
                name = entry.key.removeprefix(prefix)
                if name not in CONTROL_KEYS:
                    continue
                deleted = entry.operation is not None
                try:
                    state.apply(name, None if deleted else entry.value)
                except ValueError:
                    log.error("bad control value", extra={"fields": {"key": entry.key}})
                    continue
                state.revisions[name] = int(entry.revision or 0)
                await on_change(name, state)
                if instance and name in acknowledge:
                    with contextlib.suppress(nats.errors.Error, OSError):
                        await kv.put(
                            ack_key(chain_id, name, instance), str(entry.revision).encode()
                        )
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()
