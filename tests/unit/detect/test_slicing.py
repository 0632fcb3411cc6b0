"""Slicing a CPU-bound generator (services/detect/slicing.py): the same result as one pass,
pauses exactly when a slice is used up, a pause that lasts until other ready work has run
(and no longer than its bound), and work that arrives mid-computation handled within about
one slice instead of after the whole computation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator

from services.detect.slicing import finish, run_sliced, yield_to_others


def units(n: int, log: list[int]) -> Generator[None, None, int]:
    """n units of work (each logged), then their sum."""
    total = 0
    for i in range(n):
        log.append(i)
        total += i
        yield
    return total


def test_finish_runs_to_the_end_and_returns_the_value() -> None:
    log: list[int] = []
    assert finish(units(5, log)) == 10
    assert log == [0, 1, 2, 3, 4]


def test_run_sliced_pauses_each_time_a_slice_is_used_up() -> None:
    now = [0.0]
    pauses: list[list[int]] = []
    log: list[int] = []

    def clock() -> float:
        now[0] += 1.0  # each reading: one second later
        return now[0]

    async def pause() -> None:
        pauses.append(list(log))

    got = asyncio.run(run_sliced(units(7, log), 2.5, clock=clock, pause=pause))
    assert got == 21 and log == list(range(7))
    # resumed at t=1; units 0, 1 read t=2, 3 (2 s elapsed < 2.5), unit 2 reads t=4: pause ...
    assert pauses == [[0, 1, 2], [0, 1, 2, 3, 4, 5]]


def test_run_sliced_with_no_budget_pauses_after_every_unit() -> None:
    count = [0]

    async def pause() -> None:
        count[0] += 1

    assert asyncio.run(run_sliced(units(4, []), 0.0, pause=pause)) == 6
    assert count == [4]  # after each unit (the last one's pause is before the end is seen)


def test_a_pause_lasts_until_other_ready_work_has_run() -> None:
    async def main() -> tuple[list[str], int]:
        done: list[str] = []

        async def chain(depth: int) -> None:  # `depth` rounds of the loop, one hop each
            for _ in range(depth):
                await asyncio.sleep(0)
            done.append(f"chain {depth}")

        tasks = [asyncio.create_task(chain(d)) for d in (1, 5, 9)]
        rounds = await yield_to_others(max_s=3600.0)  # the time bound: its own test
        done.append("resumed")
        await asyncio.gather(*tasks)
        return done, rounds

    done, rounds = asyncio.run(main())
    assert done == ["chain 1", "chain 5", "chain 9", "resumed"]
    assert rounds >= 10


def test_a_pause_is_bounded_when_other_work_never_ends() -> None:
    async def main() -> int:
        async def spin() -> None:  # reschedules itself for ever
            for _ in iter(int, 1):
                await asyncio.sleep(0)

        task = asyncio.create_task(spin())
        rounds = await yield_to_others(max_rounds=7, max_s=3600.0)
        task.cancel()
        return rounds

    assert asyncio.run(main()) == 7


def test_a_pause_ends_once_its_time_is_up_when_other_work_never_ends() -> None:
    """A backlog of pending swaps keeps every round busy: the block resumes after `max_s`,
    not after all the rounds (counted on a clock that reads one second later each time)."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    async def main() -> int:
        async def spin() -> None:
            for _ in iter(int, 1):
                await asyncio.sleep(0)

        task = asyncio.create_task(spin())
        rounds = await yield_to_others(max_rounds=32, max_s=2.5, clock=clock)
        task.cancel()
        return rounds

    # began at t=1; rounds end reading t=2 (1 s), t=3 (2 s), t=4 (3 s >= 2.5: done)
    assert asyncio.run(main()) == 3


def _busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def _units_waited(sliced: bool) -> int:
    """A 60 ms computation (300 units of 0.2 ms); after 25 units work arrives (a callback
    scheduled on the loop, as bytes on a socket would be) and takes 3 hops to its handler.
    How many units ran between its arrival and its handling: counted, not timed, so a loaded
    machine cannot change the answer."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[int] = loop.create_future()
        done = 0
        handled: list[int] = []

        async def handler() -> None:
            at = await arrived
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            handled.append(done - at)

        def work() -> Generator[None, None, None]:
            nonlocal done
            for i in range(300):
                if i == 25:
                    loop.call_soon(arrived.set_result, done)
                _busy(0.2)
                done += 1
                yield

        task = asyncio.create_task(handler())
        await asyncio.sleep(0)  # the handler waits on its input
        steps = work()
        if sliced:  # a pause bounded by rounds only: MAX_PAUSE_S is wall time, and a
            # preemption inside a pause on a loaded machine ended it before the handler's hops
            await run_sliced(steps, 0.0005, pause=lambda: yield_to_others(max_s=float("inf")))
        else:
            finish(steps)
        await task
        return handled[0]

    return asyncio.run(main())


def test_work_arriving_mid_computation_waits_about_one_slice_not_the_whole() -> None:
    # one slice is 0.5 ms of 0.2 ms units: at most 3 units, with room for the unit under way
    assert _units_waited(sliced=True) <= 4
    assert _units_waited(sliced=False) == 275  # unsliced: after the whole computation
