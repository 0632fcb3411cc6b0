"""What a handler receives and what it may raise: the decoded message with the headers that
follow it through the pipeline, and the two failures the consume loop tells apart (retry
later, or dead-letter now). Kept apart from `bus` so pure handler modules can use them without
the NATS client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nats.aio.msg import Msg
from pydantic import BaseModel

from mev_common.subjects import HEADER_MSG_ID, HEADER_SEEN_NS, HEADER_TRACE

M = TypeVar("M", bound=BaseModel)


class Retryable(Exception):
    """Transient failure (RPC down, downstream publish timed out): nak and try again later.

    `error=False`: not a failure but a hand-back (a stopping submit returning a bundle it has
    not gated): nak'd the same way, without counting an error or logging a warning; on the
    message's last allowed delivery, a copy is stored for the next consumer once this stopping
    one's pulls have ended (mev_common.hand_back), never a dead letter."""

    def __init__(self, reason: str, delay_s: float | None = None, error: bool = True) -> None:
        super().__init__(reason)
        self.delay_s = delay_s
        self.error = error


class Permanent(Exception):
    """This message can never succeed: dead-letter it with the reason and move on."""


@dataclass(frozen=True)
class Envelope(Generic[M]):
    """A decoded message plus the headers that follow it through the pipeline."""

    message: M
    subject: str
    msg_id: str
    trace: str
    seen_ns: int
    deliveries: int = 1
    seq: int = 0  # the stream sequence (a JetStream message; 0 otherwise)
    stored_ns: int = 0  # when the stream stored it (JetStream's timestamp; 0 otherwise)
    # Work the handler started and the input's ack must wait for (pipelined publishes).
    deferred: list[asyncio.Future[Any]] = field(default_factory=list, compare=False, repr=False)

    def defer(self, done: asyncio.Future[Any]) -> None:
        """Ack this input only once `done` succeeded (a durable consumer awaits it, with the
        rest of its batch, before acking; a failure or timeout naks the input as a failed
        handler does). Only the pull consumer honours it: elsewhere, await instead."""
        self.deferred.append(done)


Handler = Callable[[Envelope[M]], Awaitable[None]]


def envelope_of(msg: Msg, message: M, deliveries: int) -> Envelope[M]:
    headers = msg.headers or {}
    msg_id = headers.get(HEADER_MSG_ID, "")
    return Envelope(
        message=message,
        subject=msg.subject,
        msg_id=msg_id,
        trace=headers.get(HEADER_TRACE, msg_id),
        seen_ns=_int_or(headers.get(HEADER_SEEN_NS), time.time_ns()),
        deliveries=deliveries,
        seq=_stream_seq(msg),
        stored_ns=_stored_ns(msg),
    )


def _stream_seq(msg: Msg) -> int:
    """The message's stream sequence (nats-py memoizes the parsed metadata), 0 if none."""
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:
        return 0


def _stored_ns(msg: Msg) -> int:
    """When the stream stored the message (unix ns, from the same memoized metadata as
    `_stream_seq`): a stage's wait for its input starts there, 0 if none."""
    try:
        return round(msg.metadata.timestamp.timestamp() * 1e6) * 1000
    except Exception:
        return 0


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default
