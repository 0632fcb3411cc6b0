"""Backruns before block-triggered simulations (services/simulate/priority.py), on a real
event loop: the order work runs in, the bound on a block's wait, and exact counts."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.simulate.priority import PendingFirst


def test_no_backrun_in_flight_means_no_wait() -> None:
    async def go() -> tuple[float, int]:
        first = PendingFirst()
        return await first.wait(1.0), first.yielded

    assert asyncio.run(go()) == (0.0, 0)


def test_a_block_simulation_runs_after_the_backruns_in_flight() -> None:
    """Two backruns arrive, a block opportunity is ready meanwhile: it runs after both are
    done, not between their awaits (the publish ack, the victim trace)."""
    order: list[str] = []

    async def go() -> PendingFirst:
        first = PendingFirst()

        async def backrun(name: str, io_s: float) -> None:
            first.enter()
            try:
                await asyncio.sleep(io_s)  # e.g. the bundle's publish ack
                order.append(name)
            finally:
                first.leave()

        async def block() -> None:
            await asyncio.sleep(0)  # both backruns have arrived
            await first.wait(1.0)
            order.append("block")

        await asyncio.gather(backrun("b1", 0.02), backrun("b2", 0.04), block())
        return first

    first = asyncio.run(go())
    assert order == ["b1", "b2", "block"]
    assert (first.inflight, first.busy, first.yielded) == (0, False, 1)


def test_a_stream_of_backruns_never_holds_a_block_past_its_bound() -> None:
    async def go() -> float:
        first = PendingFirst()
        first.enter()  # never leaves in time
        started = time.monotonic()
        waited = await first.wait(0.05)
        assert time.monotonic() - started == pytest.approx(waited, abs=0.1)  # loaded machine
        return waited

    waited = asyncio.run(go())
    assert 0.05 <= waited < 0.5  # bounded, with room for a loaded machine


def test_leave_without_enter_is_an_error() -> None:
    first = PendingFirst()
    first.enter()
    first.leave()
    with pytest.raises(RuntimeError, match="leave without enter"):
        first.leave()
    assert first.inflight == 0
