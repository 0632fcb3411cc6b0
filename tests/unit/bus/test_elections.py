"""Retries after a cluster node loss wait for a leader election, not a backoff: `Bus.pause`
ends on the election advisory, and `Bus.attempt` returns as soon as its work is done (or gives
up on a request a new leader made moot). Timings are bounds far from the timeouts used."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from mev_common.bus import Bus


def bus() -> Bus:
    return Bus(nc=cast(Any, None), js=cast(Any, None), name="test")


async def test_a_pause_ends_on_a_leader_election() -> None:
    b = bus()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, b._wake_retries)
    started = time.monotonic()
    await b.pause(10.0)
    assert time.monotonic() - started < 2.0


async def test_a_pause_ends_on_stop_and_otherwise_lasts_about_its_time() -> None:
    b, stop = bus(), asyncio.Event()
    started = time.monotonic()
    await b.pause(0.2)
    assert 0.1 < time.monotonic() - started < 2.0
    stop.set()
    started = time.monotonic()
    await b.pause(10.0, stop)
    assert time.monotonic() - started < 2.0


async def test_an_attempt_returns_when_its_work_is_done_not_at_its_timeout() -> None:
    b = bus()
    started = time.monotonic()
    assert await b.attempt(asyncio.sleep(0.01), timeout_s=10.0)
    assert time.monotonic() - started < 2.0


async def test_an_attempt_overtaken_by_an_election_is_cancelled_and_says_so() -> None:
    b, cancelled = bus(), asyncio.Event()

    async def unanswered() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    asyncio.get_running_loop().call_later(0.05, b._wake_retries)
    started = time.monotonic()
    assert not await b.attempt(unanswered(), timeout_s=10.0)
    assert time.monotonic() - started < 2.0 and cancelled.is_set()


async def test_an_attempt_with_no_answer_and_no_election_times_out() -> None:
    with pytest.raises(TimeoutError):
        await bus().attempt(asyncio.sleep(60), timeout_s=0.1)


async def test_an_attempt_passes_on_its_work_s_error() -> None:
    async def refused() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await bus().attempt(refused(), timeout_s=10.0)
