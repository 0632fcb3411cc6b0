"""bench.sizing_ab's summary: per group, p50 / p95 (nearest rank) over cycles of each cycle's
statistic of its runs, with the cycle count; a group without cycles is left out."""

from __future__ import annotations

import statistics

from bench.sizing_ab import group_rows


def test_group_rows_by_cycle_then_over_cycles() -> None:
    times = {"0": [10.0, 30.0, 20.0], "1": [5.0, 7.0, 6.0], "2": [100.0, 1.0, 50.0]}
    groups = {"0": "2-pool", "1": "2-pool", "2": "3-pool coarse"}
    rows = group_rows(times, groups, min)
    assert rows["2-pool"] == (5.0, 10.0, 2)
    assert rows["3-pool"] == (1.0, 1.0, 1)  # the coarse cycles are 3-pool cycles too
    assert rows["3-pool through two coarse tokens"] == (1.0, 1.0, 1)
    assert "3-pool, no coarse search" not in rows
    assert group_rows(times, groups, statistics.median)["2-pool"] == (6.0, 20.0, 2)
