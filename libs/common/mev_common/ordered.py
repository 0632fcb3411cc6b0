"""Per-replica ordered readers (every replica sees every message, in order, no acks) that
survive a NATS restart.

nats-py's ordered consumer recovers from a missed heartbeat alone, and not well enough: it
waits two heartbeats (10 s), re-creates the consumer from its last stream sequence + 1 (on a
server that lost its store, sequences restart at 1, so it skips everything new) and, for a
`BY_START_TIME` start, keeps the start time beside the new start sequence, which the server
rejects, every time, silently. `OrderedReader` re-subscribes itself as soon as the bus has
re-declared its streams after a reconnect, and as soon as its own stream has a new leader (a
cluster node died: the ordered consumer, placed with the old leader, died with it; waiting
for the missed heartbeats or for every other stream to re-declare costs seconds): from the
next sequence if the stream still holds it, else from the configured start (the stream was
lost: its history starts over).
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
from mev_common.bus import RECOVERY_TIMEOUT_S, Bus
from mev_common.envelope import Handler, M, envelope_of
from mev_common.messages import MessageError, decode

log = logging.getLogger("mev.bus")

# nats-py's own silent-loss check re-creates an ordered consumer after two missed heartbeats.
# In a cluster the consumer (R1) may live on a node other than its stream's leader: that node's
# death elects nothing for the stream, and this check is what notices (1 s: within 2-3 s).
IDLE_HEARTBEAT_S = 1.0


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
    stream: str | None = None
    _sub: Any = None
    _task: asyncio.Task[None] | None = None
    # held while a message is handled: unsubscribing cancels the subscription's task, and a
    # handler cancelled halfway (detect reloading its pools) would leave its state half done
    _handling: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    async def start(self) -> OrderedReader:
        self.stream = await self.bus.js.find_stream_name_by_subject(self.subject)
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
        async with self._handling:
            with contextlib.suppress(Exception):
                self.last_seq = int(msg.metadata.sequence.stream)
            await self.on_msg(msg)

    async def _supervise(self) -> None:
        """Wait for a re-declare or a new leader of this stream, re-subscribe; failures are
        logged, counted and retried (a pause that the next election ends early)."""
        while True:
            seen, elections = self.bus.generation, self._elections()
            while self.bus.generation == seen and self._elections() == elections:
                await self.bus.pause(5.0)
            while True:
                try:  # a leader elected mid-attempt: its request went unanswered, ask again
                    if await self.bus.attempt(self._resubscribe(), 2 * RECOVERY_TIMEOUT_S):
                        break
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    metrics.ERRORS.labels(kind="ordered_resubscribe").inc()
                    log.warning(
                        "ordered consumer re-subscribe failed, retrying",
                        extra={"fields": {"subject": self.subject, "error": repr(exc)}},
                    )
                    await self.bus.pause(0.3)

    def _elections(self) -> int:
        """How many new leaders this reader's stream has had."""
        return self.bus.elected.get(self.stream or "", 0)

    async def _resubscribe(self) -> None:
        async with self._handling:  # the handler in progress finishes first
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
