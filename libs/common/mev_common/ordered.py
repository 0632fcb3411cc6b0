"""Per-replica ordered readers (every replica sees every message, in order, no acks) that
survive a NATS restart.

nats-py's ordered consumer recovers from a missed heartbeat alone, and not well enough: it
waits two heartbeats (10 s), re-creates the consumer from its last stream sequence + 1 (on a
server that lost its store, sequences restart at 1, so it skips everything new) and, for a
`BY_START_TIME` start, keeps the start time beside the new start sequence, which the server
rejects, every time, silently. `OrderedReader` re-subscribes itself as soon as the bus has
re-declared its streams after a reconnect: from the next sequence if the stream still holds
it, else from the configured start (the stream was lost: its history starts over).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from mev_common import metrics
from mev_common.bus import Bus
from mev_common.envelope import Handler, M, envelope_of
from mev_common.messages import MessageError, decode

log = logging.getLogger("mev.bus")

IDLE_HEARTBEAT_S = 2.0  # nats-py's own silent-loss check: re-subscribe after 2 missed


def resume_config(
    initial: ConsumerConfig, last_seq: int | None, stream_first: int, stream_last: int
) -> ConsumerConfig:
    """Where a re-created ordered consumer starts: right after the last message handled if the
    stream still has it (or is exactly there), else where the reader first started."""
    if last_seq is not None and stream_first <= last_seq + 1 <= stream_last + 1:
        return dataclasses.replace(
            initial,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=last_seq + 1,
            opt_start_time=None,
            deliver_subject=None,
        )
    return dataclasses.replace(initial, deliver_subject=None)


@dataclasses.dataclass
class OrderedReader:
    """One ordered consumer on `subject`, re-created after every reconnect of `bus`."""

    bus: Bus
    subject: str
    on_msg: Any
    config: ConsumerConfig
    last_seq: int | None = None
    resubscribes: int = 0
    _sub: Any = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> OrderedReader:
        self._sub = await self._subscribe(dataclasses.replace(self.config))
        self._task = asyncio.create_task(self._supervise(), name=f"ordered:{self.subject}")
        return self

    async def _subscribe(self, config: ConsumerConfig, js: JetStreamContext | None = None) -> Any:
        config.idle_heartbeat = config.idle_heartbeat or IDLE_HEARTBEAT_S
        sub = await (js or self.bus.js).subscribe(
            self.subject, cb=self._handle, ordered_consumer=True, config=config
        )
        # nats-py's own reset keeps a start time beside its start sequence (server rejects
        # it): drop the start time from the copy it keeps
        jsi = getattr(sub, "_jsi", None)
        if jsi is not None and getattr(jsi, "_ccreq", None) is not None:
            jsi._ccreq.opt_start_time = None
        return sub

    async def _handle(self, msg: Msg) -> None:
        with contextlib.suppress(Exception):
            self.last_seq = int(msg.metadata.sequence.stream)
        await self.on_msg(msg)

    async def _supervise(self) -> None:
        """Wait for a re-declare, re-subscribe; failures are logged, counted and retried."""
        while True:
            seen = self.bus.generation
            await self.bus.wait_generation(seen)
            while True:
                try:
                    await self._resubscribe()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    metrics.ERRORS.labels(kind="ordered_resubscribe").inc()
                    log.warning(
                        "ordered consumer re-subscribe failed, retrying",
                        extra={"fields": {"subject": self.subject, "error": repr(exc)}},
                    )
                    await asyncio.sleep(0.5)

    async def _resubscribe(self) -> None:
        old, self._sub = self._sub, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()
        js = self.bus.recovery_js
        stream = await js.find_stream_name_by_subject(self.subject)
        info = await js.stream_info(stream)
        config = resume_config(
            self.config, self.last_seq, int(info.state.first_seq), int(info.state.last_seq)
        )
        self._sub = await self._subscribe(config, js)
        self.resubscribes += 1
        log.info(
            "ordered consumer re-subscribed",
            extra={"fields": {"subject": self.subject, "from": config.opt_start_seq}},
        )

    async def unsubscribe(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


async def subscribe_ordered(
    bus: Bus,
    subject: str,
    model: type[M],
    handler: Handler[M],
    stage: str,
    chain_id: int,
    deliver_policy: DeliverPolicy = DeliverPolicy.LAST,
    max_payload_bytes: int | None = None,
    config: ConsumerConfig | None = None,
) -> OrderedReader:
    """Per-replica ordered consumer (no acks): every replica sees every message, in order.
    Undecodable messages are dead-lettered; handler errors are counted and logged."""

    async def on_msg(msg: Msg) -> None:
        try:
            message = decode(model, msg.data, max_payload_bytes)
        except MessageError as exc:
            with contextlib.suppress(Exception):
                await bus.publish_dead_letter(chain_id, stage, msg, str(exc), 1)
            return
        try:
            await handler(envelope_of(msg, message, 1))
        except Exception as exc:
            metrics.ERRORS.labels(kind=f"{stage}_handler").inc()
            log.error("ordered handler failed", extra={"fields": {"error": repr(exc)}})

    initial = config or ConsumerConfig(deliver_policy=deliver_policy)
    return await OrderedReader(bus, subject, on_msg, initial).start()
