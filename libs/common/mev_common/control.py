"""The control plane: the `mev-control` KV bucket that `mev-bot` writes and services watch.

Why a KV bucket: it works from any container and from the host, survives restarts (an
emergency stop holds until cleared), and a watcher sees a put within a millisecond. Keys are
per chain (`<chain>.emergency_stop`), so one NATS can serve several chains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import nats.errors
from nats.js import JetStreamContext

from mev_common.kv import KeyValue, ensure_bucket
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
    return await ensure_bucket(js, CONTROL_BUCKET, history=16, replicas=replicas)


class ControlValueError(ValueError):
    """A control value no service can apply: the message names the key's valid range."""


RPC_RATE_MAX = 10.0
RPC_POOL_MAX = 1000  # settings' rpc_endpoints[].pool_size bound
_TRUE = frozenset({"1", "true", "on", "yes"})
_FALSE = frozenset({"0", "false", "off", "no", ""})


def parse_rate_factor(text: str) -> float:
    """The one rule for `rpc_rate_factor`: a number in (0, 10] (what TokenBucket accepts)."""
    try:
        value = float(text)
    except ValueError:
        raise ControlValueError(
            f"rpc rate factor must be a number in (0, {RPC_RATE_MAX:g}], got {text!r}"
        ) from None
    if not 0 < value <= RPC_RATE_MAX:  # also refuses nan and inf
        hint = f"; {value:g} % is {value / 100:g}" if RPC_RATE_MAX < value <= 100 else ""
        raise ControlValueError(
            f"rpc rate factor must be in (0, {RPC_RATE_MAX:g}]"
            + (hint or f", got {text.strip()!r}")
        )
    return value


def parse_pool_size(text: str) -> int:
    """The one rule for `rpc_pool_size`: a whole number in [1, 1000] (the config's bound)."""
    try:
        value = int(text)
    except ValueError:
        raise ControlValueError(
            f"rpc pool size must be a whole number in [1, {RPC_POOL_MAX}], got {text!r}"
        ) from None
    if not 1 <= value <= RPC_POOL_MAX:
        raise ControlValueError(f"rpc pool size must be in [1, {RPC_POOL_MAX}], got {value}")
    return value


def parse_emergency_stop(text: str) -> bool:
    """`1/true/on/yes` stop, `0/false/off/no` (or deleted) resume; anything else is refused."""
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ControlValueError(f"emergency stop must be 1 or 0, got {text!r}")


def validate(name: str, text: str) -> str:
    """The canonical text of a value the CLI may put, or ControlValueError (exit 2)."""
    text = text.strip()
    if name == RPC_RATE_FACTOR:
        return f"{parse_rate_factor(text):g}"
    if name == RPC_POOL_SIZE:
        return str(parse_pool_size(text))
    if name == EMERGENCY_STOP:
        return "1" if parse_emergency_stop(text) else "0"
    if name == NONCE_RESET:
        if not text:
            raise ControlValueError("nonce reset needs a non-empty token")
        return text
    raise ControlValueError(f"unknown control key {name!r} (known: {', '.join(CONTROL_KEYS)})")


@dataclass
class ControlState:
    """The current value of every control key of one chain, as services use them."""

    emergency_stop: bool = False
    rpc_rate_factor: float = 1.0
    rpc_pool_size: int | None = None
    nonce_reset: str | None = None
    revisions: dict[str, int] = field(default_factory=dict)

    def apply(self, name: str, raw: bytes | None) -> None:
        """Parse one key's new value by its rule (None: deleted, back to the default).

        A value that breaks the rule raises ControlValueError and leaves the old value, except
        the emergency stop: a value that cannot be parsed means STOPPED (fail safe), and the
        error still tells the operator why."""
        text = (raw or b"").decode(errors="replace").strip()
        if name == EMERGENCY_STOP:
            try:
                self.emergency_stop = parse_emergency_stop(text)
            except ControlValueError as exc:
                self.emergency_stop = True
                raise ControlValueError(f"{exc}: treated as STOPPED (fail safe)") from None
        elif name == RPC_RATE_FACTOR:
            self.rpc_rate_factor = parse_rate_factor(text) if text else 1.0
        elif name == RPC_POOL_SIZE:
            self.rpc_pool_size = parse_pool_size(text) if text else None
        elif name == NONCE_RESET:
            self.nonce_reset = text or None


def ack_value(revision: int, reason: str | None = None) -> bytes:
    """What a service puts at its ack key: the revision it handled, and whether it applied it."""
    body: dict[str, object] = {"revision": revision, "status": "applied"}
    if reason is not None:
        body.update(status="rejected", reason=reason)
    return json.dumps(body).encode()


def parse_ack(raw: bytes | None) -> tuple[int, str | None]:
    """(revision, rejection reason or None) of an ack entry; a bare revision (older services)
    counts as applied. ValueError if it is neither."""
    text = (raw or b"0").decode(errors="replace").strip()
    if not text.startswith("{"):
        return int(text), None
    body = json.loads(text)
    reason = body.get("reason") if body.get("status") == "rejected" else None
    return int(body["revision"]), (str(reason) if reason is not None else None)


OnChange = Callable[[str, ControlState], Awaitable[None]]


async def watch_control(
    js: JetStreamContext,
    chain_id: int,
    state: ControlState,
    on_change: OnChange,
    stop: asyncio.Event,
    instance: str | None = None,
    acknowledge: frozenset[str] = frozenset(),
    only: frozenset[str] = frozenset(),
    generation: Callable[[], int] | None = None,
) -> None:
    """Apply current values, then every update, until `stop`; rewatch after a broker outage.

    For each key in `acknowledge`, once `on_change` has returned, the entry's revision is put
    at `ack_key(chain, name, instance)`: the operator's command returns when it sees it. A
    value that breaks its key's rule, or that `on_change` fails to apply, is logged, acked as
    rejected (with the reason) and ignored: a control key never ends a service. `only`, if
    given, limits the keys this watcher handles (a second watcher in the same service).
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
                if only and name not in only:
                    continue
                deleted = entry.operation is not None
                revision = int(entry.revision or 0)
                state.revisions[name] = revision  # before on_change: submit's trip clear reads it
                reason = await _apply_one(state, name, None if deleted else entry.value, on_change)
                if reason is not None:
                    log.error(
                        "control value rejected: ignored",
                        extra={
                            "fields": {"key": entry.key, "revision": revision, "reason": reason}
                        },
                    )
                if instance and name in acknowledge:
                    with contextlib.suppress(nats.errors.Error, OSError):
                        await kv.put(ack_key(chain_id, name, instance), ack_value(revision, reason))
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()


async def _apply_one(
    state: ControlState, name: str, raw: bytes | None, on_change: OnChange
) -> str | None:
    """Parse and apply one value; the rejection reason, or None once applied."""
    rejected: str | None = None
    try:
        state.apply(name, raw)
    except ControlValueError as exc:
        if name != EMERGENCY_STOP:
            return str(exc)
        rejected = str(exc)  # fail safe: the stop is applied below, and still reported
    try:
        await on_change(name, state)
    except Exception as exc:  # e.g. a limiter refusing the value: keep running on the old one
        log.exception("control value could not be applied", extra={"fields": {"key": name}})
        return f"could not apply: {exc}"
    return rejected


class RpcLimits(Protocol):
    """What the RPC keys act on (RpcPool): kept as a protocol so control.py imports no chain."""

    def set_rate_factor(self, factor: float) -> None: ...

    async def set_pool_size(self, size: int) -> None: ...


RPC_KEYS = frozenset({RPC_RATE_FACTOR, RPC_POOL_SIZE})


async def watch_rpc_controls(
    js: JetStreamContext, chain_id: int, instance: str, pool: RpcLimits, stop: asyncio.Event
) -> None:
    """Apply and acknowledge `--adjust-rpc-rate` and `--adjust-rpc-pool-size` to this
    service's RPC pool until `stop`: every service holding an RpcPool runs it."""

    async def on_change(name: str, state: ControlState) -> None:
        if name == RPC_RATE_FACTOR:
            pool.set_rate_factor(state.rpc_rate_factor)
            log.info("rpc rate factor set", extra={"fields": {"factor": state.rpc_rate_factor}})
        elif name == RPC_POOL_SIZE and state.rpc_pool_size:
            await pool.set_pool_size(state.rpc_pool_size)
            log.info("rpc pool size set", extra={"fields": {"size": state.rpc_pool_size}})

    await watch_control(
        js, chain_id, ControlState(), on_change, stop, instance, RPC_KEYS, only=RPC_KEYS
    )
