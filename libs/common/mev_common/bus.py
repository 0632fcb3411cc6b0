"""NATS JetStream for services: connect, declare, publish with headers, consume with ack policy.

The consume loop, not each handler, decides what happens to a message (DESIGN §3):
- handler returned -> ack (the handler has already published downstream and awaited the ack,
  or deferred it (`Envelope.defer`: the loop awaits it first), or written to SQLite, so the
  work is durable before the input is let go);
- the payload does not decode or validate, or the handler raised `Permanent` -> publish a
  DeadLetter to `mev.<chain>.dead.<stage>` with the reason, then `term`;
- `Retryable` or any other exception -> `nak` with delay, until `max_deliver`, then dead-letter;
  a hand-back (`Retryable(error=False)`, a stopping submit) is no failure: `nak` with delay, or
  on the last allowed delivery a copy stored for the next consumer (mev_common.hand_back).
Publishing carries `Nats-Msg-Id` (dedup), `Mev-Trace` and `Mev-Seen-Ns` on every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import PubAck
from pydantic import BaseModel

from mev_common import metrics
from mev_common.aio import wait_any
from mev_common.elections import Elections

# Re-exported: handlers import these from `bus`, as before the split.
from mev_common.envelope import Envelope as Envelope
from mev_common.envelope import Handler as Handler
from mev_common.envelope import M as M
from mev_common.envelope import Permanent as Permanent
from mev_common.envelope import Retryable as Retryable
from mev_common.envelope import envelope_of as envelope_of
from mev_common.kv import KeyValue, ensure_bucket
from mev_common.messages import (
    DEAD_LETTER_PREFIX_BYTES,
    DeadLetter,
    MessageError,
    decode,
    encode,
)
from mev_common.pubacks import PubAcks
from mev_common.stream_decl import ensure_streams
from mev_common.subjects import (
    HEADER_ERROR,
    HEADER_MSG_ID,
    HEADER_SEEN_NS,
    HEADER_STAGE,
    HEADER_TRACE,
    StreamSpec,
    dead,
)

log = logging.getLogger("mev.bus")

RECOVERY_TIMEOUT_S = 1.0
# One publish attempt waits this long for its ack, then retries (same Nats-Msg-Id, so stored
# once) until the JetStream timeout: a request that went to a node killed meanwhile, or to a
# stream between leaders, is repeated against the new leader, not waited out for 5 s.
PUBLISH_ATTEMPT_S = 1.0


@dataclass
class Bus:
    """One NATS connection with JetStream; `connected` feeds the health check."""

    nc: Client
    js: JetStreamContext
    name: str
    connected: bool = True
    reconnects: int = 0
    closing: bool = False
    # What this process declared (streams, KV): run again after every reconnect, since the
    # server may have come back without its state. `generation` counts completed re-declares:
    # consumers re-subscribe when it moves.
    declarations: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    generation: int = 0
    publish_timeout_s: float = 5.0
    # Leader elections seen (a cluster node died): retries wait for them (elections.py).
    elections: Elections = field(default_factory=Elections)
    _redeclared: asyncio.Event = field(default_factory=asyncio.Event)
    _pubacks: PubAcks | None = None
    _redeclare_task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str | list[str],
        name: str,
        timeout_s: float = 5.0,
        attempts: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Bus:
        """Connect, retrying the first connection with backoff (nats-py only retries after one
        succeeded). `attempts=None` retries forever: a service waits for its broker. `url` may
        list every server of a cluster: the client fails over between them.
        `options`: credential and TLS from `nats_auth.connect_options`."""
        holder: dict[str, Bus] = {}
        servers = [url] if isinstance(url, str) else list(url)

        async def on_disconnect() -> None:
            if "bus" in holder and not holder["bus"].closing:
                holder["bus"].connected = False
                log.warning("nats disconnected", extra={"fields": {"url": url}})

        async def on_reconnect() -> None:
            if "bus" in holder:
                holder["bus"].connected = True
                holder["bus"].reconnects += 1
                log.info("nats reconnected", extra={"fields": {"url": url}})
                holder["bus"].start_redeclare()

        refused: list[str] = []

        async def on_error(exc: Exception) -> None:
            text = str(exc)
            if "authorization" not in text.lower() and "permission" not in text.lower():
                log.debug("nats error: %s", exc)
            elif refused[-1:] != [text]:  # loud once per new refusal, not on every retry
                refused.append(text)
                credential = (options or {}).get("nkeys_seed", "none")
                fields = {"error": text, "credential": str(credential)}
                log.error("nats refused this client", extra={"fields": fields})

        delay, tried = 0.2, 0
        while True:
            tried += 1
            try:
                nc = await nats.connect(
                    servers=servers,
                    name=name,
                    connect_timeout=timeout_s,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=on_disconnect,
                    reconnected_cb=on_reconnect,
                    error_cb=on_error,
                    **(options or {}),
                )
                break
            except (OSError, nats.errors.NoServersError, TimeoutError) as exc:
                if attempts is not None and tried >= attempts:
                    raise
                log.warning(
                    "nats not reachable, retrying",
                    extra={"fields": {"url": url, "error": str(exc), "retry_in_s": delay}},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        bus = cls(nc=nc, js=nc.jetstream(timeout=timeout_s), name=name, publish_timeout_s=timeout_s)
        holder["bus"] = bus
        await bus._watch_elections()
        return bus

    async def _watch_elections(self) -> None:
        """In a cluster a node can die without this connection noticing (it was connected to
        another node), while consumers placed on the dead node went with it: a new stream
        leader is the signal to re-subscribe, as a reconnect is."""
        await self.elections.watch(self.nc, self.start_redeclare)

    @property
    def elected(self) -> dict[str, int]:
        """New leaders seen, by stream: its ordered readers re-subscribe at once."""
        return self.elections.elected

    def _wake_retries(self) -> None:
        self.elections.wake()

    async def pause(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """A retry's wait, ended early by a leader election or `stop` (Elections.pause)."""
        await self.elections.pause(seconds, stop)

    async def attempt(self, work: Awaitable[Any], timeout_s: float) -> bool:
        """Run `work`, bounded; False if a leader was elected first (Elections.attempt)."""
        return await self.elections.attempt(work, timeout_s)

    @property
    def recovery_js(self) -> JetStreamContext:
        """JetStream with a 1 s timeout, for re-subscribing after a reconnect: a request that
        reached a dead node or a leaderless stream is retried soon, not after 5 s."""
        return self.nc.jetstream(timeout=RECOVERY_TIMEOUT_S)

    async def declare(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run `fn` (create streams, buckets) now and again after every reconnect."""
        await fn()
        self.declarations.append(fn)

    def start_redeclare(self) -> None:
        if self._redeclare_task is None or self._redeclare_task.done():
            self._redeclare_task = asyncio.create_task(self._redeclare(), name="nats-redeclare")

    async def _redeclare(self) -> None:
        """Re-create everything declared, then tell the consumers (`generation`) to
        re-subscribe. A declaration that fails (JetStream still recovering, or this user may
        not create streams) is logged, counted and retried; the consumers are told after the
        first attempt anyway (a kept store needs no declaration) and again once it succeeds."""
        delay, told = 0.1, False
        while not self.closing:
            try:
                if not await self.attempt(self._declare_all(), 2 * RECOVERY_TIMEOUT_S):
                    continue  # a leader was elected meanwhile: ask it now
                break
            except Exception as exc:
                metrics.ERRORS.labels(kind="redeclare").inc()
                log.warning(
                    "re-declare after reconnect failed, retrying",
                    extra={"fields": {"error": repr(exc), "retry_in_s": delay}},
                )
                if not told:
                    self._bump_generation()
                    told = True
                await self.pause(delay)  # a new leader is the likely fix: retry at once
                delay = min(delay * 2, 1.0)
        self._bump_generation()

    async def _declare_all(self) -> None:
        for fn in list(self.declarations):
            await fn()

    def _bump_generation(self) -> None:
        self.generation += 1
        event, self._redeclared = self._redeclared, asyncio.Event()
        event.set()
        self._wake_retries()  # a reader pausing for a re-declare or an election resumes now
        log.info("nats state re-declared", extra={"fields": {"generation": self.generation}})

    async def wait_generation(self, seen: int, stop: asyncio.Event | None = None) -> None:
        """Return once `generation` differs from `seen` (or `stop` is set)."""
        while self.generation == seen and not (stop and stop.is_set()):
            await wait_any(self._redeclared, *([stop] if stop is not None else []))

    async def ensure_streams(self, specs: list[StreamSpec]) -> None:
        """Create or update every stream (stream_decl.ensure_streams)."""
        await ensure_streams(self.js, specs)

    async def publish(
        self,
        subject: str,
        message: BaseModel | bytes,
        *,
        msg_id: str,
        trace: str,
        seen_ns: int,
        extra_headers: dict[str, str] | None = None,
    ) -> PubAck:
        """Publish and await the stream's ack, retrying within the JetStream timeout in short
        attempts (`PUBLISH_ATTEMPT_S`) while the broker or the stream's leader is away; then
        `Retryable`. Every attempt carries `msg_id`: a publish whose ack was lost and that is
        tried again is stored once. Bytes are sent as they are (a hand-back's copy)."""
        headers = {HEADER_MSG_ID: msg_id, HEADER_TRACE: trace, HEADER_SEEN_NS: str(seen_ns)}
        if extra_headers:
            headers.update(extra_headers)
        data = message if isinstance(message, bytes) else encode(message)
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self.publish_timeout_s, 0.05
        while True:
            attempt = min(PUBLISH_ATTEMPT_S, max(0.05, deadline - loop.time()))
            try:
                ack = await self.js.publish(subject, data, timeout=attempt, headers=headers)
                break
            except _BROKER_AWAY as exc:
                metrics.ERRORS.labels(kind="publish").inc()
                if self.closing or loop.time() + delay >= deadline:
                    raise Retryable(f"publish to {subject} failed: {exc!r}") from exc
                await self.pause(delay)
                delay = min(delay * 2, 0.4)
        metrics.MESSAGES_PUBLISHED.labels(subject=_subject_kind(subject)).inc()
        return ack

    async def publish_later(
        self, subject: str, message: BaseModel, *, msg_id: str, trace: str, seen_ns: int
    ) -> asyncio.Future[None]:
        """Publish now; the future ends with the stream's ack (mev_common.pubacks: the consume
        loop awaits a batch's acks together via `Envelope.defer`; a failure naks the input)."""
        headers = {HEADER_MSG_ID: msg_id, HEADER_TRACE: trace, HEADER_SEEN_NS: str(seen_ns)}
        self._pubacks = self._pubacks or PubAcks(self.nc)
        return await self._pubacks.send(subject, encode(message), headers, _subject_kind(subject))

    async def publish_dead_letter(
        self, chain_id: int, stage: str, msg: Msg, reason: str, deliveries: int
    ) -> None:
        """Keep the evidence: reason, origin, size, hash and a bounded prefix of the payload."""
        data = msg.data or b""
        headers = {k: str(v) for k, v in (msg.headers or {}).items()}
        letter = DeadLetter(
            stage=stage,
            subject=msg.subject,
            reason=reason[:1000],
            payload_size=len(data),
            payload_sha256=hashlib.sha256(data).hexdigest(),
            payload_prefix=data[:DEAD_LETTER_PREFIX_BYTES].decode("utf-8", "backslashreplace"),
            headers=headers,
            deliveries=deliveries,
        )
        original_id = headers.get(HEADER_MSG_ID) or letter.payload_sha256
        await self.publish(
            dead(chain_id, stage),
            letter,
            msg_id=f"dead:{stage}:{original_id}:{deliveries}",
            trace=headers.get(HEADER_TRACE, original_id),
            seen_ns=int(headers.get(HEADER_SEEN_NS, "0") or 0),
            extra_headers={HEADER_ERROR: reason[:200].replace("\n", " "), HEADER_STAGE: stage},
        )
        metrics.DEAD_LETTERS.labels(stage=stage).inc()

    @property
    def is_connected(self) -> bool:
        """The connection is up now (what a money decision checks before trusting control state)."""
        return bool(self.nc.is_connected)

    async def publish_core(self, subject: str, message: BaseModel) -> None:
        """Core NATS, no stream and no ack: for hints that only matter to whoever listens right
        now (a withdrawn backrun); a lost one costs a reverted trade at most, never money."""
        await self.nc.publish(subject, encode(message))

    async def subscribe_core(
        self,
        subject: str,
        model: type[M],
        handler: Callable[[M], Awaitable[None]],
        *,
        max_payload_bytes: int | None = None,
    ) -> Subscription:
        """Core NATS subscription: each message decoded into `model` and handed to `handler`.
        An undecodable one is counted (`errors{kind="bad_<model>"}`), logged and skipped: there
        is nothing to ack or dead-letter on a core subject. Unsubscribe when done."""
        kind = f"bad_{model.__name__.lower()}"

        async def on_msg(msg: Msg) -> None:
            try:
                message = decode(model, msg.data, max_payload_bytes)
            except MessageError as exc:
                metrics.ERRORS.labels(kind=kind).inc()
                log.warning(
                    "unreadable message",
                    extra={"fields": {"subject": msg.subject, "error": str(exc)}},
                )
                return
            await handler(message)

        return await self.nc.subscribe(subject, cb=on_msg)

    async def last_payload(self, stream: str, subject: str) -> bytes | None:
        """The newest message's payload on `subject` in `stream`, or None if it holds none."""
        try:
            msg = await self.js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:
            return None
        return msg.data or b""

    async def key_value(
        self, bucket: str, *, history: int, replicas: int = 1, ttl_s: float | None = None
    ) -> KeyValue:
        """The KV bucket, created if absent (idempotent, race-safe between replicas)."""
        return await ensure_bucket(self.js, bucket, history=history, replicas=replicas, ttl_s=ttl_s)

    async def close(self) -> None:
        """Drain: flush pending publishes and let subscriptions finish, then close."""
        self.closing = True
        if self.nc.is_closed:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.drain(), timeout=5.0)
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):  # the broker may already be gone
                await self.nc.close()


def _subject_kind(subject: str) -> str:
    """Metric label without the chain id: mev.31337.opportunities.backrun -> opportunities."""
    parts = subject.split(".")
    return parts[2] if len(parts) > 2 else subject


# The broker or the stream's leader is away (restart, cluster election): retry, never crash.
_BROKER_AWAY = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    OSError,
)
