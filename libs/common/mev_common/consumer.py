"""The durable pull consumer every stage runs: bounded concurrency, the ack policy of
`mev_common.bus`, and a fetch loop that survives the broker.

After a reconnect (or a stream leader election) the bus re-declares streams; the loop then
re-subscribes, which re-creates the durable consumer if the server lost it. A fetch loop that
ends unexpectedly is logged, counted and restarted; `stall` tells health when work waits
without progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Generic

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from mev_common import metrics
from mev_common.aio import sleep_or_stop
from mev_common.bus import Bus
from mev_common.envelope import Handler, M, Permanent, Retryable, envelope_of
from mev_common.messages import MessageError, decode
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
    processed: int = 0
    last_error: str | None = None
    stall: StallWatch = field(default_factory=lambda: StallWatch(30.0))

    async def subscribe(
        self, js: JetStreamContext | None = None
    ) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=self.max_deliver,
            ack_wait=self.ack_wait_s,
            max_ack_pending=self.spec.max_ack_pending,
            filter_subject=self.spec.filter_subject,
        )
        return await (js or self.bus.js).pull_subscribe(
            self.spec.filter_subject,
            durable=self.spec.durable,
            stream=self.spec.stream,
            config=config,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch while not stopped; on stop, let in-flight work finish and ack, then return.
        The fetch loop never ends silently: an unexpected exit is logged, counted and the loop
        restarted (a fresh subscription) after a short pause. In-flight handlers live in a
        TaskGroup that outlives every subscription: leaving it is the drain."""
        slots = asyncio.Semaphore(self.concurrency)
        js = self.bus.js
        async with asyncio.TaskGroup() as inflight:
            while not stop.is_set():
                try:
                    await self._fetch_loop(stop, slots, js, inflight)
                except Exception as exc:
                    self.last_error = f"fetch loop: {exc!r}"
                    metrics.ERRORS.labels(kind="consumer_loop_restart").inc()
                    log.error(
                        "consume loop ended unexpectedly: restarting",
                        extra={"fields": {"stage": self.stage, "error": repr(exc)}},
                    )
                    await sleep_or_stop(stop, 0.5)
                    js = self.bus.recovery_js  # a restart asks with a short timeout

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
        sub = await self.subscribe(js)
        backoff = 0.1
        try:
            while not stop.is_set():
                if self.bus.generation != generation:
                    generation = self.bus.generation
                    sub = await self._resubscribe(sub, "nats reconnected")
                free = max(1, _free_slots(slots))
                try:
                    msgs = await sub.fetch(batch=free, timeout=self.fetch_timeout_s)
                except TimeoutError:  # nothing to fetch (nats' TimeoutError subclasses it)
                    continue
                except (nats.errors.Error, OSError) as exc:
                    self.last_error = f"fetch: {exc!r}"
                    metrics.ERRORS.labels(kind="fetch").inc()
                    await sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, 2.0)
                    if self.bus.nc.is_connected:
                        with contextlib.suppress(nats.errors.Error, OSError):
                            sub = await self._resubscribe(sub, f"fetch failed: {exc!r}")
                    continue
                backoff = 0.1
                for msg in msgs:
                    await slots.acquire()
                    task = inflight.create_task(self._process(msg))
                    task.add_done_callback(lambda _: slots.release())
        finally:
            # a pull subscription left open makes the connection's drain wait for its timeout
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _resubscribe(
        self, sub: JetStreamContext.PullSubscription, why: str
    ) -> JetStreamContext.PullSubscription:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        new = await self.subscribe(self.bus.recovery_js)
        log.info("consumer re-subscribed", extra={"fields": {"stage": self.stage, "why": why}})
        return new

    async def _process(self, msg: Msg) -> None:
        deliveries = _deliveries(msg)
        try:
            message = decode(self.model, msg.data, self.max_payload_bytes)
        except MessageError as exc:
            await self._reject(msg, str(exc), deliveries)
            return
        env = envelope_of(msg, message, deliveries)
        try:
            await self.handler(env)
        except Permanent as exc:
            await self._reject(msg, f"permanent: {exc}", deliveries)
        except Exception as exc:  # the loop decides: every other error is retried, bounded
            delay = exc.delay_s if isinstance(exc, Retryable) and exc.delay_s else self.nak_delay_s
            self.last_error = f"{type(exc).__name__}: {exc}"
            metrics.ERRORS.labels(kind=f"{self.stage}_handler").inc()
            if deliveries >= self.max_deliver:
                await self._reject(
                    msg, f"gave up after {deliveries} deliveries: {exc!r}", deliveries
                )
                return
            log.warning(
                "handler failed, will retry",
                extra={"fields": {"stage": self.stage, "error": repr(exc), "try": deliveries}},
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=delay)
        else:
            try:
                await msg.ack()
            except Exception as exc:  # ack lost: redelivery is deduped downstream by msg id
                self.last_error = f"ack: {exc!r}"
                return
            self.processed += 1
            self.stall.progress()
            metrics.MESSAGES_CONSUMED.labels(stage=self.stage, result="ok").inc()

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


def _deliveries(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


def _free_slots(sem: asyncio.Semaphore) -> int:
    return int(getattr(sem, "_value", 1))
