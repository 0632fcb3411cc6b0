"""Leader elections of a NATS JetStream cluster, as what retries wait for.

When a node dies, every stream, KV bucket and durable consumer it led elects a new leader a few
seconds later; until then requests to them go unanswered. A retry that waits a fixed backoff
wakes late; one that waits for the election advisory resumes within milliseconds of it. One
`Elections` per connection (Bus.elections) counts the advisories and ends every pause early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

log = logging.getLogger("mev.bus")

LEADER_ELECTED = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.*"
CONSUMER_LEADER_ELECTED = "$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.*.*"


@dataclass
class Elections:
    """New leaders seen by stream (`elected`), and the event that ends retry pauses."""

    elected: dict[str, int] = field(default_factory=dict)
    _election: asyncio.Event = field(default_factory=asyncio.Event)

    async def watch(self, nc: Client, on_stream_elected: Callable[[], None]) -> None:
        """Subscribe to the stream and consumer leader advisories; a new stream leader also
        calls `on_stream_elected` (the bus re-declares and its consumers re-subscribe)."""

        async def stream_elected(msg: Msg) -> None:
            log.info("stream leader elected", extra={"fields": {"subject": msg.subject}})
            stream = msg.subject.rsplit(".", 1)[-1]
            self.elected[stream] = self.elected.get(stream, 0) + 1
            self.wake()
            on_stream_elected()

        async def consumer_elected(msg: Msg) -> None:
            log.info("consumer leader elected", extra={"fields": {"subject": msg.subject}})
            self.wake()

        with contextlib.suppress(nats.errors.Error):  # a user not allowed advisories
            await nc.subscribe(LEADER_ELECTED, cb=stream_elected)
            await nc.subscribe(CONSUMER_LEADER_ELECTED, cb=consumer_elected)

    def wake(self) -> None:
        event, self._election = self._election, asyncio.Event()
        event.set()

    async def pause(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """A retry's wait: `seconds` with +-25% jitter (replicas do not retry in step), ended
        early by a leader election (what a retry in a cluster waits for) or by `stop`."""
        waiters = {asyncio.ensure_future(self._election.wait())}
        if stop is not None:
            waiters.add(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(
                waiters,
                timeout=seconds * random.uniform(0.75, 1.25),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in waiters:
                task.cancel()

    async def attempt(self, work: Awaitable[Any], timeout_s: float) -> bool:
        """Run `work` (bounded: a leaderless stream never answers); False if a leader was
        elected first: a request sent before the election went unanswered, send it again."""
        task = asyncio.ensure_future(work)
        election = asyncio.ensure_future(self._election.wait())
        try:
            done, _ = await asyncio.wait(
                {task, election}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            election.cancel()
        if task in done:
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if election in done:
            return False
        raise TimeoutError(f"no answer within {timeout_s} s")
