"""Quantiles and the "median over repeated runs" summary every scenario reports.

Why nearest-rank on sorted samples: no interpolation between two real observations, so a p95 is
a latency that actually happened; across runs we take the median of each run's value, which a
single noisy run (another process on the 2 cores) cannot drag.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple


def quantile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1]) of a non-empty sample."""
    if not samples:
        raise ValueError("quantile of no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return float(ordered[rank - 1])


def timed_passes(
    calls: Sequence[Callable[[], object]], passes: int = 1, gc_off: bool = False
) -> list[float]:
    """Each call's µs: the median of `passes` perf_counter_ns timings, taken in passes over all
    the calls (not back to back: no call is timed on the caches its own last run warmed).

    Why: timed once, a call that a preemption or a garbage collection lands in puts the
    machine's noise in the tail (scenario 5's p95); the median of a few passes keeps the call's
    own cost. `gc_off`: the cyclic collector off while timing. Both sides of a comparison must be
    timed the same way (scenario 5 times ours and degenbot's with this one function).
    """
    times: list[list[float]] = [[] for _ in calls]
    was_on = gc.isenabled()
    if gc_off:
        gc.disable()
    try:
        for _ in range(passes):
            for call, spent in zip(calls, times, strict=True):
                started = time.perf_counter_ns()
                call()
                spent.append((time.perf_counter_ns() - started) / 1e3)
    finally:
        if gc_off and was_on:
            gc.enable()
    return [statistics.median(spent) for spent in times]


class RunStats(NamedTuple):
    """One run's latency distribution, summarised."""

    p50: float
    p95: float
    # shadows tuple.count on purpose: every scenario reads `.count`; mypy flags the shadowing
    count: int  # type: ignore[assignment]


def run_stats(samples: Sequence[float]) -> RunStats:
    return RunStats(quantile(samples, 0.5), quantile(samples, 0.95), len(samples))


class Summary(NamedTuple):
    """Median over runs of each run's p50 and p95 (for a single-valued metric, p50 == p95).

    `samples` is how many observations the percentiles rest on (summed over the runs); the
    report prints it beside every figure (0: a value that is not a percentile of samples).
    """

    p50: float
    p95: float
    runs: int
    samples: int = 0


def summarize(runs: Sequence[RunStats]) -> Summary:
    """Median across repeated runs of the per-run p50 and p95."""
    return Summary(
        statistics.median(r.p50 for r in runs),
        statistics.median(r.p95 for r in runs),
        len(runs),
        sum(r.count for r in runs),
    )


def exact(samples: Sequence[float]) -> Summary:
    """One pooled sample's nearest-rank p50 / p95 and its size: the figure every latency row
    prints (never interpolated from histogram buckets)."""
    stats = run_stats(samples)
    return Summary(stats.p50, stats.p95, 1, stats.count)


def summarize_values(values: Sequence[float]) -> Summary:
    """A metric measured once per run (a rate, a count): median and p95 across runs."""
    return Summary(statistics.median(values), quantile(values, 0.95), len(values))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
