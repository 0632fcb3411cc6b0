"""Two waits every long-running loop needs: sleep unless stopped, and the first of several
events. One place, so no loop hand-rolls `create_task` + `wait` + `cancel` again."""

from __future__ import annotations

import asyncio
import contextlib


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
