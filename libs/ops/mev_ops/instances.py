"""The operator's view of running instances: heartbeats in the control KV (see runtime.py).

A CLI connection to NATS is short-lived and never reconnects: an operator command that cannot
reach the broker says so at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import orjson
from mev_common import lifecycle_keys as keys
from mev_common.control import ensure_control_bucket
from mev_common.nats_auth import OPERATOR, NatsAuthError, connect_options
from mev_common.settings import Settings
from nats.aio.client import Client
from nats.js.kv import KeyValue


class BrokerUnreachable(Exception):
    """NATS did not answer: the command cannot know or change anything."""


async def connect(settings: Settings, timeout_s: float = 3.0) -> Client:

    async def quiet(_exc: Exception) -> None:  # the one-line failure below says it all
        return None

    try:  # nats-py keeps retrying a first connection that fails: bound it ourselves
        return await asyncio.wait_for(
            nats.connect(
                settings.nats.url,
                name="mev-bot-cli",
                connect_timeout=timeout_s,
                allow_reconnect=False,
                error_cb=quiet,
                **connect_options(settings.nats, OPERATOR),
            ),
            timeout=timeout_s,
        )
    except NatsAuthError as exc:
        raise BrokerUnreachable(str(exc)) from None
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        raise BrokerUnreachable(f"cannot reach NATS at {settings.nats.url}: {exc!r}") from None


async def control_bucket(nc: Client) -> KeyValue:
    return await ensure_control_bucket(nc.jetstream())


@dataclass(frozen=True)
class Instance:
    """One instance's last heartbeat; `fresh` is False once it stopped beating."""

    key_suffix: str  # <service>.<instance> as in the KV key
    beat: dict[str, Any]
    age_s: float

    @property
    def service(self) -> str:
        return str(self.beat.get("service", self.key_suffix.split(".", 1)[0]))

    @property
    def name(self) -> str:
        return str(self.beat.get("instance", self.key_suffix.split(".", 1)[-1]))

    @property
    def key_instance(self) -> str:
        """The instance as spelt in KV keys (dots replaced), e.g. in ack keys."""
        return self.key_suffix.split(".", 1)[-1]

    @property
    def fresh(self) -> bool:
        return self.age_s <= keys.STALE_AFTER_S

    @property
    def healthy(self) -> bool:
        return self.fresh and self.beat.get("status") == "ok"


async def read_prefix(kv: KeyValue, pattern: str) -> dict[str, bytes]:
    """Current values of the keys matching `pattern`. A watcher, not `kv.keys(filters=...)`:
    nats-py's filtered keys() finds nothing on a live bucket."""
    watcher = await kv.watch(pattern, ignore_deletes=True)
    values: dict[str, bytes] = {}
    try:
        while True:
            try:
                entry = await watcher.updates(timeout=2.0)
            except nats.errors.TimeoutError:
                break
            if entry is None:  # end of the current values
                break
            if entry.operation is None:
                values[entry.key] = entry.value or b""
            else:
                values.pop(entry.key, None)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()
    return values


async def read_instances(kv: KeyValue, chain_id: int, now: float | None = None) -> list[Instance]:
    """Every instance that has a heartbeat key, sorted by service then name."""
    now = time.time() if now is None else now
    prefix = f"{chain_id}.instances."
    found: list[Instance] = []
    for key, value in (await read_prefix(kv, keys.instances_filter(chain_id))).items():
        try:
            beat = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(beat, dict):
            continue
        age = max(0.0, now - float(beat.get("ts", 0.0)))
        found.append(Instance(key.removeprefix(prefix), beat, age))
    order = {"ingest": 0, "detect": 1, "simulate": 2, "submit": 3}
    return sorted(found, key=lambda i: (order.get(i.service, 9), i.service, i.name))
