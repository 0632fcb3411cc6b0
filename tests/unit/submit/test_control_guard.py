"""A dead control watcher stops sends until it is running again."""

from __future__ import annotations

import asyncio

from services.submit.control_guard import ControlGuard


async def test_a_failing_watcher_blocks_until_restarted() -> None:
    stop = asyncio.Event()
    runs: list[str] = []
    release = asyncio.Event()

    async def watcher() -> None:
        runs.append("run")
        if len(runs) == 1:
            raise ConnectionError("kv watch lost")
        await release.wait()  # the second run is healthy until told to end
        await stop.wait()

    guard = ControlGuard(watcher, stop, first_delay_s=0.2)
    assert guard.down == "control watcher not started"
    task = asyncio.create_task(guard.supervise())
    await asyncio.sleep(0.05)
    assert guard.down == "control watcher failed: ConnectionError('kv watch lost')"
    await asyncio.sleep(0.4)
    assert guard.down is None and len(runs) == 2 and guard.restarts == 1
    stop.set()
    release.set()
    await asyncio.wait_for(task, 2)
    assert guard.down is None  # a clean stop is not a failure


async def test_a_watcher_that_returns_is_down_too() -> None:
    stop = asyncio.Event()

    async def watcher() -> None:
        return None

    guard = ControlGuard(watcher, stop, first_delay_s=5)
    task = asyncio.create_task(guard.supervise())
    await asyncio.sleep(0.05)
    assert guard.down == "control watcher ended"
    stop.set()
    await asyncio.wait_for(task, 2)
