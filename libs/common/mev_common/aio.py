"""The waits every long-running loop needs: sleep unless stopped, the first of several events,
work unless stopped first; and a helper loop that logs its failure. One place, so no loop
hand-rolls task creation, `wait` and `cancel` again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("mev.runtime")


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, returning early once `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def wait_any(*events: asyncio.Event) -> None:
    """Return once any of `events` is set (at once if one already is)."""
    if any(event.is_set() for event in events):
        return
    async with asyncio.TaskGroup() as group:
        waiters = [group.create_task(event.wait()) for event in events]
        done = asyncio.Event()
        for waiter in waiters:
            waiter.add_done_callback(lambda _: done.set())
        await done.wait()
        for waiter in waiters:
            waiter.cancel()


async def until_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None if `stop` is set first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def logged(work: Awaitable[None], what: str) -> None:
    """Run a helper loop whose failure must not end its TaskGroup: log it instead (a dead
    health server or heartbeat shows in health and the logs, the service keeps working)."""
    try:
        await work
    except Exception as exc:
        log.error(f"{what} ended", extra={"fields": {"error": repr(exc)}})
