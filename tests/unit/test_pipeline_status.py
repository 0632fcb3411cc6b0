"""The run status line, from real prometheus-client exposition text."""

from __future__ import annotations

import pytest
from mev_ops.pipeline_status import histogram_quantile, parse_metrics, pipeline_status
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


def exposition(build) -> str:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    build(registry)
    return generate_latest(registry).decode()


def test_status_line_from_each_services_metrics() -> None:
    def ingest(r: CollectorRegistry) -> None:
        c = Counter("mev_bot_messages_published", "x", ["subject"], registry=r)
        c.labels(subject="blocks").inc(12)
        c.labels(subject="mempool").inc(40)

    def detect(r: CollectorRegistry) -> None:
        Counter("mev_bot_messages_published", "x", ["subject"], registry=r).labels(
            subject="opportunities"
        ).inc(9)
        h = Histogram(
            "mev_bot_detection_latency_seconds", "x", buckets=(0.001, 0.002, 0.004), registry=r
        )
        for value in [0.0005] * 50 + [0.0015] * 50:
            h.observe(value)

    def submit(r: CollectorRegistry) -> None:
        b = Counter("mev_bot_bundles", "x", ["strategy", "outcome"], registry=r)
        b.labels(strategy="backrun", outcome="included").inc(3)
        b.labels(strategy="cyclic_arbitrage", outcome="included").inc(2)
        b.labels(strategy="backrun", outcome="reverted").inc(1)
        b.labels(strategy="backrun", outcome="not_sent").inc(7)
        p = Counter("mev_bot_profit_wei", "x", ["strategy"], registry=r)
        p.labels(strategy="backrun").inc(1.5e15)

    status = pipeline_status(
        {
            "ingest": parse_metrics(exposition(ingest)),
            "detect": parse_metrics(exposition(detect)),
            "submit": parse_metrics(exposition(submit)),
        }
    )
    assert status.line() == (
        "blocks 12  pending 40  opps 9  simulated 0  sent 6  landed 5  reverted 1  "
        "profit 0.001500 ETH  "
        "detect seen->opp p50/p95 1.0/1.9 ms n=100 (block triggers -/- ms n=0)  "
        "sim seen->bundle p50/p95 -/- ms n=0 (block triggers -/- ms n=0)"
    )


def test_quantile_interpolates_like_prometheus() -> None:
    def build(r: CollectorRegistry) -> None:
        h = Histogram("lat", "x", buckets=(1.0, 2.0), registry=r)
        for value in (0.5, 1.5, 1.5, 5.0):
            h.observe(value)

    samples = parse_metrics(exposition(build))
    assert histogram_quantile(samples, "lat", 0.5) == 1.5
    assert histogram_quantile(samples, "lat", 0.25) == 1.0
    assert histogram_quantile(samples, "lat", 0.99) == 2.0
    assert histogram_quantile({}, "lat", 0.5) is None


def test_latencies_over_a_window_leave_the_cold_start_out() -> None:
    registry = CollectorRegistry()
    h = Histogram(
        "mev_bot_simulation_latency_seconds", "x", buckets=(0.001, 0.002, 0.1), registry=registry
    )
    for _ in range(40):  # the first minute: cold forks and prefetches
        h.observe(0.05)
    before = {"simulate": parse_metrics(generate_latest(registry).decode())}
    for _ in range(60):  # warm
        h.observe(0.0015)
    now = {"simulate": parse_metrics(generate_latest(registry).decode())}
    # since start: 40 of 100 are cold, p95 in (2, 100] ms: 2 + 98 x 35/40
    assert pipeline_status(now).simulate_ms[1] == pytest.approx(87.75)
    windowed = pipeline_status(now, before, 60.0)
    assert windowed.simulate_ms == pytest.approx((1.5, 1.95))
    assert (pipeline_status(now).simulate_n, windowed.simulate_n) == (100, 60)
    assert windowed.line().endswith(
        "sim seen->bundle p50/p95 1.5/1.9 ms n=60 (block triggers -/- ms n=0) (last 60 s)"
    )
    # a service restarted meanwhile (its counts went down) counts from zero
    restarted = pipeline_status(before, now, 60.0)
    assert (restarted.simulate_ms[1], restarted.simulate_n) == (pytest.approx(95.1), 40)


def test_detect_latency_is_the_pending_swaps_and_block_triggers_are_shown_apart() -> None:
    """The bench's "seen -> opportunity" row is pending swaps only; a block trigger's seen ->
    detected also holds ingest's log fetch and the block's whole search: not one quantity."""
    registry = CollectorRegistry()
    h = Histogram(
        "mev_bot_detection_latency_seconds", "x", ["trigger"],
        buckets=(0.001, 0.002, 0.05), registry=registry,
    )  # fmt: skip
    for _ in range(60):
        h.labels(trigger="pending").observe(0.0015)
    for _ in range(40):
        h.labels(trigger="block").observe(0.03)
    status = pipeline_status({"detect": parse_metrics(generate_latest(registry).decode())})
    assert status.detect_ms == pytest.approx((1.5, 1.95))  # mixed in, p95 was 44 ms
    assert status.detect_block_ms == pytest.approx((26.0, 47.6))
    assert (status.detect_n, status.detect_block_n) == (60, 40)
    assert (
        "detect seen->opp p50/p95 1.5/1.9 ms n=60 (block triggers 26.0/47.6 ms n=40)"
        in status.line()
    )


def test_sim_latency_is_the_pending_backruns_and_block_triggered_bundles_are_shown_apart() -> None:
    """A block-triggered bundle's seen is ingest's head: its path holds the block's log fetch
    and detect's whole search. The status line's sim figure is the backruns'; blocks beside."""
    registry = CollectorRegistry()
    h = Histogram(
        "mev_bot_simulation_latency_seconds", "x", ["trigger"],
        buckets=(0.001, 0.002, 0.1), registry=registry,
    )  # fmt: skip
    for _ in range(60):
        h.labels(trigger="pending").observe(0.0015)
    for _ in range(40):
        h.labels(trigger="block").observe(0.05)
    status = pipeline_status({"simulate": parse_metrics(generate_latest(registry).decode())})
    assert status.simulate_ms == pytest.approx((1.5, 1.95))  # mixed in, p95 was 87.75 ms
    assert status.simulate_block_ms == pytest.approx((51.0, 95.1))
    assert (status.simulate_n, status.simulate_block_n) == (60, 40)
    assert (
        "sim seen->bundle p50/p95 1.5/1.9 ms n=60 (block triggers 51.0/95.1 ms n=40)"
        in status.line()
    )
