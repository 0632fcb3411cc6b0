"""The latency buckets are fine enough that the status line's p95 (interpolated in them, like
Prometheus' histogram_quantile) does not overstate the exact p95 of `make run`'s latencies."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from mev_common.metrics import LATENCY_BUCKETS
from mev_ops.pipeline_status import histogram_quantile, parse_metrics
from prometheus_client import CollectorRegistry, Histogram, generate_latest


def lognormal(median_s: float, sigma: float, n: int = 200) -> list[float]:
    """n evenly spaced quantiles of a log-normal latency: the shape of detect's seen ->
    opportunity on `make run` (p50 1.2-3 ms, a tail to ~10 ms)."""
    return [median_s * math.exp(sigma * NormalDist().inv_cdf((i + 0.5) / n)) for i in range(n)]


def status_p95(values: list[float]) -> float:
    registry = CollectorRegistry()
    hist = Histogram("lat_seconds", "test", buckets=LATENCY_BUCKETS, registry=registry)
    for v in values:
        hist.observe(v)
    p95 = histogram_quantile(parse_metrics(generate_latest(registry).decode()), "lat_seconds", 0.95)
    assert p95 is not None
    return p95


def nearest_rank_p95(values: list[float]) -> float:
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


@pytest.mark.parametrize("median_ms", [1.0, 1.2, 1.5, 1.8, 2.0, 2.5, 3.0])
@pytest.mark.parametrize("sigma", [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0])
def test_interpolated_p95_within_10_percent_of_exact(median_ms: float, sigma: float) -> None:
    """The buckets were 2-3-5-7.5-10-20 ms: linear interpolation in a wide bucket, over a
    density that falls through it, put p95 up to 22% above the exact figure (3.83 -> 4.45 ms
    at p50 2 ms), across the 3 ms target. Exact p95s here run 1.6-15 ms."""
    values = lognormal(median_ms / 1000, sigma)
    exact = nearest_rank_p95(values)
    assert status_p95(values) <= exact * 1.10
    assert status_p95(values) >= exact * 0.95


def test_existing_bounds_are_kept() -> None:
    """Alerts and dashboards select `le` values (deploy/compose/prometheus): only added to."""
    old = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)
    assert set(old) <= set(LATENCY_BUCKETS)
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
