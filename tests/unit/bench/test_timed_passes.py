"""bench.stats.timed_passes: how scenario 5 times both sides (values are not asserted: no
timed assertions; what is checked is the order of the calls, the counts and the GC state)."""

from __future__ import annotations

import gc

import pytest

from bench.stats import timed_passes


def test_each_call_runs_once_a_pass_in_passes_over_all_calls() -> None:
    """Not back to back: a call is never timed on the caches its own last run just warmed."""
    order: list[int] = []
    calls = [lambda i=i: order.append(i) for i in range(3)]
    times = timed_passes(calls, passes=4)
    assert order == [0, 1, 2] * 4
    assert len(times) == 3 and all(t >= 0 for t in times)


def test_gc_is_off_only_while_timing_and_restored() -> None:
    seen: list[bool] = []
    was_on = gc.isenabled()
    try:
        gc.enable()
        timed_passes([lambda: seen.append(gc.isenabled())], passes=2, gc_off=True)
        assert seen == [False, False] and gc.isenabled()
        gc.disable()  # a caller that had it off keeps it off
        timed_passes([lambda: seen.append(gc.isenabled())], passes=1, gc_off=True)
        assert not gc.isenabled()
        gc.enable()
        timed_passes([lambda: seen.append(gc.isenabled())], passes=1)  # default: left on
        assert seen[-1] is True
    finally:
        (gc.enable if was_on else gc.disable)()


def test_a_failing_call_still_restores_the_collector() -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    gc.enable()
    with pytest.raises(RuntimeError):
        timed_passes([boom], passes=1, gc_off=True)
    assert gc.isenabled()
