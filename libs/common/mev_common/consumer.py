"""The durable pull consumer every stage runs: bounded concurrency, the ack policy of
`mev_common.bus`, and a fetch loop that survives the broker.

After a reconnect (or a stream leader election) the bus re-declares streams; the loop then
re-subscribes, which re-creates the durable consumer if the server lost it. A re-subscribe
that fails (the consumer has no leader yet) keeps the old subscription: in a cluster the
durable survives a node loss and fetches reach its new leader by themselves. Every retry waits
on `Bus.pause`, which a leader election ends early. A fetch loop that ends unexpectedly is
logged, counted and restarted; `stall` tells health when work waits without progress.

Batched (detect's input): each fetched batch is handled in order in the fetch loop's own task,
its handlers' publishes pipelined (`Envelope.defer`, mev_common.pubacks), then one settle task
awaits the batch's stream acks together and acks the inputs, while the next batch is fetched.
Acks stay explicit, one per input: with AckPolicy ALL one replica's ack would also ack what
another replica of the shared consumer still holds, lost if that one is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from mev_common import metrics
from mev_common.bus import RECOVERY_TIMEOUT_S, Bus
from mev_common.consumer_decl import ConsumerMismatch, consumer_config, declare_consumer, limit_of
from mev_common.envelope import Handler, M, Permanent, Retryable, envelope_of
from mev_common.hand_back import store_copy
from mev_common.messages import MessageError, decode
from mev_common.pull import Puller
from mev_common.stall import StallWatch
from mev_common.subjects import ConsumerSpec

log = logging.getLogger("mev.bus")


@dataclass
class PullConsumer(Generic[M]):
    """A durable pull consumer shared by the replicas of a stage, with bounded concurrency."""

    bus: Bus
    spec: ConsumerSpec
    model: type[M]
    handler: Handler[M]
    stage: str
    chain_id: int
    concurrency: int = 16
    max_deliver: int = 5
    ack_wait_s: float = 30.0
    nak_delay_s: float = 0.5
    max_payload_bytes: int | None = None
    fetch_timeout_s: float = 0.5
    # Batched: a fetched batch is handled in order in one task and settled (deferred publishes
    # awaited, inputs acked) as one, while the next batch is fetched (module docstring).
    batched: bool = False
    processed: int = 0
    last_error: str | None = None
    stall: StallWatch = field(default_factory=lambda: StallWatch(30.0))
    # Set once `run`'s fetch loop ended for good: no pull request of this consumer is left, so
    # a hand-back's copy stored then goes to the next consumer (mev_common.hand_back).
    _pulls_ended: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _inflight: asyncio.TaskGroup | None = field(default=None, init=False, repr=False)
    # The durable brought to the config once (at start); the server's own `max_deliver`,
    # after which it delivers a message no more, read at every (re)subscribe.
    _declared: bool = field(default=False, init=False, repr=False)
    _limit: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._limit = self.max_deliver
        self._consumed_ok = metrics.MESSAGES_CONSUMED.labels(stage=self.stage, result="ok")

    async def subscribe(
        self, js: JetStreamContext | None = None
    ) -> JetStreamContext.PullSubscription:
        """Bind to the durable, created from the config if missing. The first time (at start)
        it is brought to the config (mev_common.consumer_decl: updated, or a refusal); after,
        a re-subscribe takes the durable as it is, so replicas with other configs in a rolling
        restart do not undo each other. Either way the durable's `max_deliver` is the limit."""
        js = js or self.bus.js
        want = consumer_config(self.spec, self.max_deliver, self.ack_wait_s)
        have = await declare_consumer(js, self.spec, want, update=not self._declared)
        self._declared = True
        self._limit = limit_of(have, self.max_deliver) if have else self.max_deliver
        return await js.pull_subscribe_bind(durable=self.spec.durable, stream=self.spec.stream)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch while not stopped; on stop, let in-flight work finish (acked, or handed back by
        its handler), then return. The fetch loop never ends silently: an unexpected exit is
        logged, counted and the loop restarted (a fresh subscription) after a short pause.
        In-flight handlers live in a TaskGroup that outlives every subscription: leaving it is
        the drain."""
        slots = asyncio.Semaphore(self.concurrency)
        js = self.bus.js
        self._pulls_ended = asyncio.Event()
        refusal: ConsumerMismatch | None = None
        async with asyncio.TaskGroup() as inflight:
            self._inflight = inflight
            while not stop.is_set():
                try:
                    await self._fetch_loop(stop, slots, js, inflight)
                except Exception as exc:
                    if isinstance(exc, ConsumerMismatch) and not self._declared:
                        refusal = exc  # at start, nothing fetched: the service refuses (exit 2)
                        break
                    self.last_error = f"fetch loop: {exc!r}"
                    metrics.ERRORS.labels(kind="consumer_loop_restart").inc()
                    log.error(
                        "consume loop ended unexpectedly: restarting",
                        extra={"fields": {"stage": self.stage, "error": repr(exc)}},
                    )
                    await self.bus.pause(0.5, stop)
                    js = self.bus.recovery_js  # a restart asks with a short timeout
            self._pulls_ended.set()
        self._inflight = None
        if refusal is not None:
            raise refusal

    async def _fetch_loop(
        self,
        stop: asyncio.Event,
        slots: asyncio.Semaphore,
        js: JetStreamContext,
        inflight: asyncio.TaskGroup,
    ) -> None:
        """One subscription's life: re-subscribe (which re-creates the durable consumer) when
        the bus re-declared after a reconnect or when fetch fails, e.g. consumer not found."""
        generation = self.bus.generation
        sub = await self.subscribe(js)  # creates the durable; messages come through `puller`
        puller = await Puller(self.bus.nc, self.spec.stream, self.spec.durable).open()
        backoff, redo = 0.1, ""
        try:
            while not stop.is_set():
                if self.bus.generation != generation:
                    generation, redo = self.bus.generation, "nats reconnected"
                if redo and self.bus.nc.is_connected:
                    try:  # a failure keeps `sub` (still good if the durable survived)
                        sub, redo = await self._resubscribe(sub, redo), ""
                    except (nats.errors.Error, OSError) as exc:
                        self.last_error = f"re-subscribe: {exc!r}"
                        await self.bus.pause(0.2, stop)
                    except _Abandoned:  # a leader was elected meanwhile: fetch from it now
                        pass
                free = max(1, _free_slots(slots))
                try:
                    msgs = await puller.fetch(free, self.fetch_timeout_s)
                except (nats.errors.Error, OSError) as exc:
                    self.last_error = f"fetch: {exc!r}"
                    metrics.ERRORS.labels(kind="fetch").inc()
                    await self.bus.pause(backoff, stop)
                    backoff = min(backoff * 2, 0.5)
                    redo = f"fetch failed: {exc!r}"
                    continue
                backoff = 0.1
                if self.batched and msgs:
                    for _ in msgs:  # free: no wait
                        await slots.acquire()
                    settle = inflight.create_task(self._settle(await self._run_batch(msgs)))
                    settle.add_done_callback(partial(_release, slots, len(msgs)))
                    continue
                for msg in msgs:
                    await slots.acquire()
                    task = inflight.create_task(self._process(msg))
                    task.add_done_callback(lambda _: slots.release())
        finally:
            # a pull subscription left open makes the connection's drain wait for its timeout
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await puller.close()

    async def _resubscribe(
        self, sub: JetStreamContext.PullSubscription, why: str
    ) -> JetStreamContext.PullSubscription:
        created: list[JetStreamContext.PullSubscription] = []

        async def subscribe() -> None:
            created.append(await self.subscribe(self.bus.recovery_js))

        if not await self.bus.attempt(subscribe(), 2 * RECOVERY_TIMEOUT_S):
            raise _Abandoned
        new = created[0]
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        log.info("consumer re-subscribed", extra={"fields": {"stage": self.stage, "why": why}})
        return new

    async def _process(self, msg: Msg) -> None:
        """One message in its own task (the unbatched mode)."""
        handled = await self._handle(msg)
        if handled is not None:
            await self._settle([handled])

    async def _run_batch(self, msgs: list[Msg]) -> list[_Handled]:
        """A fetched batch handled in order in the fetch loop's task (no task per message);
        a message whose handler deferred a publish yields once so the client sends it now,
        not after the rest of the batch."""
        handled = []
        for k, msg in enumerate(msgs, 1):
            done = await self._handle(msg)
            if done is not None:
                handled.append(done)
                if done.deferred and k < len(msgs):  # after the last, the next fetch yields
                    await asyncio.sleep(0)
        return handled

    async def _handle(self, msg: Msg) -> _Handled | None:
        """Decode and run the handler; None if the message was dead-lettered or nak'd."""
        deliveries = _deliveries(msg)
        try:
            message = decode(self.model, msg.data, self.max_payload_bytes)
        except MessageError as exc:
            await self._reject(msg, str(exc), deliveries)
            return None
        env = envelope_of(msg, message, deliveries)
        try:
            await self.handler(env)
        except Permanent as exc:
            await self._reject(msg, f"permanent: {exc}", deliveries)
        except Exception as exc:  # the loop decides: every other error is retried, bounded
            await self._failed(msg, exc, deliveries)
        else:
            return _Handled(msg, deliveries, env.deferred)
        return None

    async def _settle(self, handled: list[_Handled]) -> None:
        """Ack each input once its deferred work (pipelined publishes) succeeded, awaited for
        the whole batch at once; an input whose deferred work failed or timed out is retried
        as a failed handler is. Nothing is acked before its results are stored downstream."""
        futures = [f for h in handled for f in h.deferred]
        if futures:
            _, late = await asyncio.wait(futures, timeout=self.bus.publish_timeout_s)
            for future in late:
                future.cancel()
        for h in handled:
            error = next(filter(None, map(_failure, h.deferred)), None)
            if error is not None:
                await self._failed(h.msg, error, h.deliveries)
                continue
            try:
                await h.msg.ack()
            except Exception as exc:  # ack lost: redelivery is deduped downstream by msg id
                self.last_error = f"ack: {exc!r}"
                continue
            self.processed += 1
            self.stall.progress()
            self._consumed_ok.inc()

    async def _failed(self, msg: Msg, exc: BaseException, deliveries: int) -> None:
        """Nak with delay for a retry, or dead-letter once `max_deliver` is reached."""
        delay = exc.delay_s if isinstance(exc, Retryable) and exc.delay_s else self.nak_delay_s
        if isinstance(exc, Retryable) and not exc.error:  # a hand-back, not a failure
            if await self._last_delivery(deliveries):  # delivered no more: a copy goes on
                copy = self._copy_after_pulls(msg, str(exc), deliveries)
                if self._inflight is None:
                    await copy
                else:  # not in this task: a batch is handled in the fetch loop's own
                    self._inflight.create_task(copy)
                return
            log.info("handed back", extra={"fields": {"stage": self.stage, "why": str(exc)}})
            with contextlib.suppress(Exception):
                await msg.nak(delay=delay)
            return
        self.last_error = f"{type(exc).__name__}: {exc}"
        metrics.ERRORS.labels(kind=f"{self.stage}_handler").inc()
        if deliveries >= self._limit:
            await self._reject(msg, f"gave up after {deliveries} deliveries: {exc!r}", deliveries)
            return
        log.warning(
            "handler failed, will retry",
            extra={"fields": {"stage": self.stage, "error": repr(exc), "try": deliveries}},
        )
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)

    async def _last_delivery(self, deliveries: int) -> bool:
        """Whether the server delivers this message no more: by the durable's `max_deliver`,
        asked again (a hand-back is rare: a stopping submit's), as another replica may have
        lowered it since this one subscribed (a rolling restart). Unknown: the last (a copy
        is stored and the original acked, so the message goes on either way)."""
        if deliveries >= self._limit:
            return True
        try:
            info = await self.bus.recovery_js.consumer_info(self.spec.stream, self.spec.durable)
        except Exception:
            return True
        self._limit = limit_of(info.config, self._limit)
        return deliveries >= self._limit

    async def _copy_after_pulls(self, msg: Msg, why: str, deliveries: int) -> None:
        """A hand-back on the last allowed delivery: once this consumer's pulls have ended (a
        copy stored before could go to a pull of this stopping consumer), store a copy for the
        next one and ack the original (mev_common.hand_back); a copy not stored: dead-letter."""
        if self._inflight is not None:
            await self._pulls_ended.wait()
        try:
            await store_copy(self.bus, msg)
        except Exception as exc:
            reason = f"handed back on its last delivery, copy not stored: {exc!r} ({why})"
            await self._reject(msg, reason, deliveries)
            return
        with contextlib.suppress(Exception):
            await msg.ack()
        log.info(
            "handed back on its last delivery: copied",
            extra={"fields": {"stage": self.stage, "why": why, "try": deliveries}},
        )

    async def _reject(self, msg: Msg, reason: str, deliveries: int) -> None:
        """Dead-letter then term; if the dead letter cannot be published, nak (keep the input)."""
        self.last_error = reason
        try:
            await self.bus.publish_dead_letter(self.chain_id, self.stage, msg, reason, deliveries)
        except Exception as exc:
            log.error("dead-letter publish failed", extra={"fields": {"error": repr(exc)}})
            with contextlib.suppress(Exception):
                await msg.nak(delay=self.nak_delay_s)
            return
        with contextlib.suppress(Exception):
            await msg.term()
        self.stall.progress()
        metrics.MESSAGES_CONSUMED.labels(stage=self.stage, result="dead").inc()
        log.warning(
            "message dead-lettered",
            extra={"fields": {"stage": self.stage, "subject": msg.subject, "reason": reason}},
        )


@dataclass(frozen=True)
class _Handled:
    """A message its handler returned from, with the work its ack waits for."""

    msg: Msg
    deliveries: int
    deferred: list[asyncio.Future[Any]]


def _failure(future: asyncio.Future[Any]) -> BaseException | None:
    if future.cancelled():
        return TimeoutError("deferred work (a publish's stream ack) did not complete in time")
    return future.exception()


class _Abandoned(Exception):
    """A re-subscribe given up because a leader was elected while it waited for an answer."""


def _deliveries(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


def _release(slots: asyncio.Semaphore, n: int, _: object) -> None:
    for _ in range(n):
        slots.release()


def _free_slots(sem: asyncio.Semaphore) -> int:
    return int(getattr(sem, "_value", 1))
