"""The two shared waits: `wait_any` returns on the first event set (and leaves no waiter
behind), `sleep_or_stop` returns early on stop and sleeps its time otherwise."""

from __future__ import annotations

import asyncio

from mev_common.aio import sleep_or_stop, wait_any


async def test_wait_any_returns_on_the_first_event_and_leaves_no_task() -> None:
    first, second = asyncio.Event(), asyncio.Event()
    before = len(asyncio.all_tasks())
    waiter = asyncio.ensure_future(wait_any(first, second))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    second.set()
    await asyncio.wait_for(waiter, 1.0)
    assert len(asyncio.all_tasks()) == before
    assert not first.is_set()


async def test_wait_any_returns_at_once_when_one_is_already_set() -> None:
    done = asyncio.Event()
    done.set()
    await asyncio.wait_for(wait_any(asyncio.Event(), done), 0.1)


async def test_sleep_or_stop_returns_early_on_stop_and_sleeps_otherwise() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    started = loop.time()
    await sleep_or_stop(stop, 0.2)
    assert loop.time() - started >= 0.2
    loop.call_later(0.05, stop.set)
    started = loop.time()
    await sleep_or_stop(stop, 5.0)
    assert loop.time() - started < 1.0
