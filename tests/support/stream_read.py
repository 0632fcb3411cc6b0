"""Read every message a stream holds on a subject, as a test sees the bus: an ordered consumer
drained until 0.3 s of silence, retried until the caller's condition holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from mev_common.bus import Bus
from mev_common.messages import decode as decode_message
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


async def read_all(bus: Bus, subject: str, model: type[M]) -> list[M]:
    """Every message on `subject` so far, decoded as `model`, in stream order."""
    sub = await bus.js.subscribe(subject, ordered_consumer=True)
    found: list[M] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.3)
            except TimeoutError:
                return found
            found.append(decode_message(model, msg.data))
    finally:
        await sub.unsubscribe()


async def read_until(
    bus: Bus, subject: str, model: type[M], want: Callable[[list[M]], bool], timeout_s: float
) -> list[M]:
    """`read_all` again every 0.2 s until `want(messages)` holds or `timeout_s` passed; returns
    the last read either way (the caller asserts)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await read_all(bus, subject, model)
        if want(found) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)
