"""A long CPU-bound computation run in short slices, so other asyncio work goes first.

Why: one detect process handles both triggers, and a block's search (~10 ms of CPU on the
devnet) ran in one piece. Pending swaps arrive in a burst right after each block (users react
to it), so they waited behind that search: `make run`'s detect p95 was 5-9 ms for a path whose
own work is ~0.3 ms. Here the search is a generator that yields between units of work (a
cycle filtered, a cycle sized); `run_sliced` runs it until `slice_s` has passed, then gives the
event loop back until nothing else is ready (`yield_to_others`), and resumes. A pending swap
therefore waits at most one slice (plus one unit) behind a block. The result is the one the
same generator gives run in one pass (`finish`): slicing decides only when it runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")
Steps = Generator[None, None, T]  # yields between units of work, returns the result

# How long a block search may hold the loop before queued work gets its turn: a pending swap
# waits at most this (plus one unit of work) behind a block.
SLICE_S = 0.0005
# A pause ends once nothing else is ready, or after this many loop rounds (work that keeps
# rescheduling itself must not stall the search for ever). A pending swap needs ~4 rounds
# from its bytes on the socket to its handler (read, dispatch, the pull's waiter, the batch).
MAX_ROUNDS = 32
# ... or once this long has passed: under a backlog of pending swaps every round has work, and
# 32 rounds of their searches held a block for 100-240 ms a pause (bench scenario 3's 100
# triggers/s on a loaded machine). So a block gets at least ~1/5 of the loop meanwhile.
MAX_PAUSE_S = 0.002
FALLBACK_ROUNDS = 6  # on a loop that does not show its ready queue (not CPython's asyncio)


def finish(steps: Steps[T]) -> T:
    """Run `steps` to the end in one pass (no pause)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def one_pass(make: Callable[P, Steps[T]]) -> Callable[P, T]:
    """`make`'s steps, run by `finish`: the plain function beside the generator."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return finish(make(*args, **kwargs))

    run.__doc__ = make.__doc__
    return run


async def yield_to_others(
    max_rounds: int = MAX_ROUNDS,
    max_s: float = MAX_PAUSE_S,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Give the loop back until no other callback is ready (all work that was waiting ran:
    I/O that arrived meanwhile was read and its handlers ran to their next real wait), at
    most `max_rounds` rounds and no round begun after `max_s`. Returns the rounds it took."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)  # CPython's ready queue (a deque); no public view
    limit = max_rounds if ready is not None else min(max_rounds, FALLBACK_ROUNDS)
    rounds, began = 0, clock()
    while rounds < limit:
        await asyncio.sleep(0)
        rounds += 1
        if (ready is not None and not ready) or clock() - began >= max_s:
            break
    return rounds


async def run_sliced(
    steps: Steps[T],
    slice_s: float = SLICE_S,
    *,
    clock: Callable[[], float] = time.perf_counter,
    pause: Callable[[], Awaitable[object]] = yield_to_others,
) -> T:
    """Run `steps` to the end, pausing (`pause`) whenever `slice_s` has passed since it last
    resumed. The result is `finish(steps)`'s: pauses only decide when each unit runs."""
    resumed = clock()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        if clock() - resumed >= slice_s:
            await pause()
            resumed = clock()
