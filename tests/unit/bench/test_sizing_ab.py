"""bench.sizing_ab's summary: per group, p50 / p95 (nearest rank) over cycles of each cycle's
statistic of its runs, with the cycle count; a group without cycles is left out."""

from __future__ import annotations

import statistics

from bench.sizing_ab import compare_answers, group_rows


def test_group_rows_by_cycle_then_over_cycles() -> None:
    times = {"0": [10.0, 30.0, 20.0], "1": [5.0, 7.0, 6.0], "2": [100.0, 1.0, 50.0]}
    groups = {"0": "2-pool", "1": "2-pool", "2": "3-pool coarse"}
    rows = group_rows(times, groups, min)
    assert rows["2-pool"] == (5.0, 10.0, 2)
    assert rows["3-pool"] == (1.0, 1.0, 1)  # the coarse cycles are 3-pool cycles too
    assert rows["3-pool through two coarse tokens"] == (1.0, 1.0, 1)
    assert "3-pool, no coarse search" not in rows
    assert group_rows(times, groups, statistics.median)["2-pool"] == (6.0, 20.0, 2)


def test_compare_answers_allows_more_never_less() -> None:
    old = {"0 default": [5, 100], "1 default": [7, 50], "2 default": None, "3 default": [1, 9]}
    new = {"0 default": [5, 100], "1 default": [8, 60], "2 default": [3, 1], "3 default": [1, 8]}
    assert compare_answers(old, new) == {"equal": 1, "ahead": 2, "behind": 1, "lost": 0}
    assert compare_answers(new, old)["lost"] == 1  # a trade the old side found, dropped
