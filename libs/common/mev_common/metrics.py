"""Every Prometheus metric, declared once, with the runbook's names (DESIGN §8).

Each service exports only the metrics it owns (`OWNED_BY`) plus the shared ones (status, NATS,
RPC, errors, messages): a scrape of the wrong port then has no such series instead of a
confident zero (`mev_bot_bundle_success_rate 0.0` from ingest). `registry_for(service)` is what
the service's /metrics serves; tests check every metric a rule or dashboard uses is exported by
its owner. Rates the runbook asks for as gauges
(`..._per_second`, `..._per_hour`) are refreshed by `RateTracker` from the `_total` counters.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
)
from prometheus_client.metrics import MetricWrapperBase

# Sub-millisecond buckets: our targets are single-digit ms, the runbook's 50-200 ms. At most
# 1.5x apart from 1 to 30 ms: `make run`'s status line interpolates its p95 linearly inside a
# bucket, and over 2-3-5-7.5-10-20 ms that put it up to ~20% above the exact figure (the
# density falls through a wide bucket; tests/unit/test_latency_buckets.py). Bounds are only
# ever added: alerts and dashboards select `le` values.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.0075, 0.01, 0.015,
    0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5,
)  # fmt: skip


class SampledHistogram(Histogram):
    """A Histogram whose observations can also be written one by one (`log_samples_to`).

    Why: bench reports exact-sample percentiles; a bucketed histogram only bounds them. Costs
    one attribute check per observation while no sink is set (the default).
    """

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        super().observe(amount, exemplar)
        if _SAMPLE_SINK is not None:
            labels = ",".join(getattr(self, "_labelvalues", ()) or ())
            _SAMPLE_SINK.write(f"{self._name} {labels} {amount!r}\n")


_SAMPLE_SINK: TextIO | None = None
SAMPLES_ENV = "MEV_LATENCY_SAMPLES_DIR"


def log_samples_to(directory: str | None, service: str) -> Path | None:
    """Append every latency observation to `<directory>/<service>-<pid>.samples` (one
    "name labels seconds" line each, line-buffered); a bench-only switch, off when None."""
    global _SAMPLE_SINK
    if not directory:
        return None
    path = Path(directory) / f"{service}-{os.getpid()}.samples"
    _SAMPLE_SINK = path.open("a", buffering=1)
    return path


STATUS = Gauge("mev_bot_status", "1 while this service runs and NATS is connected, else 0")
BUILD = Info("mev_bot_build", "Service name, version and instance")

DETECTION_LATENCY = SampledHistogram(
    "mev_bot_detection_latency_seconds",
    "Trigger seen (Mev-Seen-Ns) to its opportunities published (live triggers only, not "
    "catch-up after a start or reload); trigger is block or pending",
    ["trigger"],
    buckets=LATENCY_BUCKETS,
)
SIMULATION_LATENCY = SampledHistogram(
    "mev_bot_simulation_latency_seconds",
    "Trigger seen (Mev-Seen-Ns) to simulated bundle published; trigger is block or pending",
    ["trigger"],
    buckets=LATENCY_BUCKETS,
)
SUBMISSION_LATENCY = SampledHistogram(
    "mev_bot_submission_latency_seconds",
    "Trigger seen (Mev-Seen-Ns) to signed transaction handed to the RPC (tick-to-trade); "
    "trigger is block or pending",
    ["trigger"],
    buckets=LATENCY_BUCKETS,
)
for _trigger in ("pending", "block"):  # both series from the start, at zero (dashboards, bench)
    SIMULATION_LATENCY.labels(trigger=_trigger)
    SUBMISSION_LATENCY.labels(trigger=_trigger)
HOP_LATENCY = SampledHistogram(
    "mev_bot_hop_latency_seconds",
    "Where tick-to-trade goes, one hop of a published bundle or a sent trade at a time "
    "(sim_arrive: seen to simulate's handler, sim_victim, sim_wait, sim_run, sim_publish "
    "for a backrun, sim_block_arrive ... sim_block_publish for a block-triggered bundle; "
    "submit_arrive: seen to submit's handler, submit_gate, submit_sign, submit_record; "
    "submit_wait: the bundle stored in its stream to submit's handler, submit's own part "
    "of submit_arrive); "
    "and of a block trigger (ingest_block: head seen to its logs in hand; detect_block_arrive: "
    "seen to detect's handler; detect_block_search); of a pending swap (ingest_pending: seen to "
    "stored in the mempool stream; detect_pending_arrive: seen to "
    "detect's handler (the rest of its detection latency is detect's work and the stream ack)",
    ["hop"],
    buckets=LATENCY_BUCKETS,
)

TRANSACTIONS_PROCESSED = Counter(
    "mev_bot_transactions_processed", "Triggers (pending txs and blocks) processed", ["stage"]
)
TRANSACTIONS_PER_SECOND = Gauge(
    "mev_bot_transactions_processed_per_second", "Triggers processed per second (10 s window)"
)

BUNDLES = Counter("mev_bot_bundles", "Bundles by final outcome", ["strategy", "outcome"])
BUNDLE_SUCCESS_RATE = Gauge(
    "mev_bot_bundle_success_rate", "Included / sent bundles over the last hour (0..1)"
)
STRATEGY_SUCCESS_RATE = Gauge(
    "mev_bot_strategy_success_rate", "Included / sent bundles per strategy (0..1)", ["strategy"]
)
PROFIT_WEI = Counter(
    "mev_bot_profit_wei",
    "Realized gross profit in wei (from receipts); net = this - mev_bot_gas_spent_wei_total",
    ["strategy"],
)
PROFIT_ETH_PER_HOUR = Gauge("mev_bot_profit_eth_per_hour", "Realized profit over the last hour")
GAS_SPENT_WEI = Counter(
    "mev_bot_gas_spent_wei", "Gas paid by our transactions, in wei", ["strategy"]
)
GAS_EFFICIENCY_RATIO = Gauge(
    "mev_bot_gas_efficiency_ratio", "Gross profit / (gross profit + gas spent) over the last hour"
)
GAS_PRICE = Gauge(
    "mev_bot_gas_price",
    "Current base fee + priority fee estimate, in wei: the next block's base fee plus "
    "submit.priority_fee (exported by submit)",
)
OPPORTUNITIES_DROPPED = Counter(
    "mev_bot_opportunities_dropped",
    "Opportunities found but not published (or withdrawn), by reason: below_min_profit, "
    "backrun_crowded, backrun_victim_queued, backrun_withdrawn (a block trade's withdrawal too), "
    "block_crowded (a block trade a pending swap tipping more would run ahead of), feed_gap "
    "(held while detect's pending view may miss swaps: services/detect/feed_gap.py)",
    ["reason"],
)
MEMPOOL_SIZE = Gauge("mev_bot_mempool_size", "Pending transactions tracked")
RESIDUAL_WEI = Gauge(
    "mev_bot_residual_wei",
    "Missed profit: the best cycle net of gas (>= the strategy's min_profit) left at the end "
    "of the last block, through the pools it changed (0 if none)",
)
RESIDUAL_WEI_TOTAL = Counter(
    "mev_bot_residual_wei_summed", "mev_bot_residual_wei summed over every block seen live"
)
PENDING_FEED = Gauge(
    "mev_bot_pending_feed_active", "1 if the chain has a pending-tx feed, 0 if block-driven only"
)

RPC_REQUESTS = Counter(
    "mev_bot_rpc_requests", "JSON-RPC requests", ["endpoint", "method", "status"]
)
RPC_REQUESTS_PER_SECOND = Gauge(
    "mev_bot_rpc_requests_per_second", "JSON-RPC requests per second (10 s window)"
)
GC_PAUSE = Histogram(
    "mev_bot_gc_pause_seconds",
    "Garbage-collector pauses by generation (0, 1, 2 = full): each holds the event loop",
    ["generation"],
    buckets=(0.0001, 0.00025, *LATENCY_BUCKETS),
)
RPC_LATENCY = Histogram(
    "mev_bot_rpc_latency_seconds", "JSON-RPC round trip", ["endpoint"], buckets=LATENCY_BUCKETS
)
RPC_HEALTHY = Gauge("mev_bot_rpc_endpoint_healthy", "1 if the endpoint answers", ["endpoint"])
RPC_BUDGET_USED_RATIO = Gauge(
    "mev_bot_rpc_budget_used_ratio",
    "JSON-RPC calls in the last minute / this service's share of chain.rpc_budget_per_minute "
    "(0 when no budget is set)",
)
RPC_BUDGET_SKIPS = Counter(
    "mev_bot_rpc_budget_skips", "Work skipped because the RPC call budget was spent", ["what"]
)
RPC_BUDGET_PER_MINUTE = Gauge(
    "mev_bot_rpc_budget_per_minute", "This service's share of the RPC budget (0: unlimited)"
)
BLOCK_PHASE_LOCKED = Gauge(
    "mev_bot_block_phase_locked",
    "1 while ingest's polled head is phase-locked to block production (RPC budget), else 0",
)
LATE_HEAD_REFUSALS = Counter(
    "mev_bot_late_head_refusals",
    "Trades not sent: the next block is likely produced before the tx reaches the node",
)

ERRORS = Counter("mev_bot_errors", "Errors by kind", ["kind"])
ERROR_RATE = Gauge("mev_bot_error_rate", "Errors / messages handled over the last 10 s (0..1)")

MESSAGES_PUBLISHED = Counter("mev_bot_messages_published", "Messages published", ["subject"])
MESSAGES_CONSUMED = Counter(
    "mev_bot_messages_consumed", "Messages consumed by result (ok, dead)", ["stage", "result"]
)
DEAD_LETTERS = Counter(
    "mev_bot_dead_letters", "Messages sent to the dead-letter subject", ["stage"]
)
NATS_CONNECTED = Gauge("mev_bot_nats_connected", "1 while connected to NATS")
EMERGENCY_STOP = Gauge("mev_bot_emergency_stop_active", "1 while the emergency stop flag is set")
SAFETY_TRIP = Gauge(
    "mev_bot_safety_trip",
    "1 while a loss limit holds submit's emergency stop (tx_cost, daily_gas_budget, daily_loss, "
    "consecutive_reverts); the operator clears it by writing the emergency-stop key",
    ["reason"],
)
CONTROL_WATCHER_UP = Gauge(
    "mev_bot_control_watcher_up", "1 while submit's control-KV watcher runs (0: nothing is sent)"
)
CONSUMER_LAG = Gauge(
    "mev_bot_consumer_lag",
    "Messages not yet acked by a stage's shared durable consumer (pending + unacked)",
    ["stream", "consumer"],
)
CONSUMER_STALLED = Gauge(
    "mev_bot_consumer_stalled",
    "1 while this consumer has work waiting but acked nothing for nats.consumer_stall_s",
    ["consumer"],
)
SIMULATOR_DISAGREEMENTS = Counter(
    "mev_bot_simulator_disagreements",
    "Bundles where the reference EVM disagreed with the fast simulator (the strategy halts)",
    ["strategy"],
)


class RateTracker:
    """Turns monotonically increasing totals into per-second gauges over a sliding window."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def rate(self, total: float, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()
        t0, v0 = self._samples[0]
        return 0.0 if now <= t0 else max(0.0, (total - v0) / (now - t0))


def counter_total(counter: Counter) -> float:
    """Sum of all label sets of a counter (prometheus_client has no public accessor)."""
    total = 0.0
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                total += sample.value
    return total


# simulate (services/simulate)
SIMULATIONS = Counter(
    "mev_bot_simulations", "Opportunities simulated, by result (published or why not)",
    ["strategy", "result"],
)  # fmt: skip
SIMULATION_REVERTS = Counter(
    "mev_bot_simulation_reverts", "Simulated executor calls that reverted, by error", ["reason"]
)
# SIMULATOR_DISAGREEMENTS is declared above (shared with the alert rules).
REFERENCE_CHECKS = Counter(
    "mev_bot_reference_checks", "Bundles re-run on the py-evm reference, by result", ["result"]
)
STALE_DROPPED = Counter(
    "mev_bot_stale_dropped", "Opportunities dropped as stale (timeout, not head, past deadline)"
)
QUARANTINED = Gauge("mev_bot_quarantined", "Pools and tokens quarantined for repeated reverts")
SIMULATOR_REFORKS = Counter(
    "mev_bot_simulator_reforks", "Fresh forks of the simulation EVM (start, reorg, gap, ...)"
)
SIMULATOR_PREFETCHES = Counter(
    "mev_bot_simulator_prefetches",
    "New pools' and victims' state loaded into the simulation EVM off the hot path"
    " (ok, moved, error; victim_early: traced when seen, victim_ok, victim_moved,"
    " victim_timeout, victim_unfunded, ...; block_diff_ok, block_diff_error, ...: a block's"
    " state diff; docs/METRICS.md lists them all)",
    ["result"],
)
SIMULATION_HALTED = Gauge(
    "mev_bot_simulation_halted", "1 while a strategy is halted by a simulator disagreement",
    ["strategy"],
)  # fmt: skip


# Which service owns which metric; every metric not named here is shared (every service).
OWNED_BY: dict[str, tuple[MetricWrapperBase, ...]] = {
    "ingest": (MEMPOOL_SIZE, PENDING_FEED),
    "detect": (DETECTION_LATENCY, OPPORTUNITIES_DROPPED, RESIDUAL_WEI, RESIDUAL_WEI_TOTAL),
    "simulate": (
        SIMULATION_LATENCY, SIMULATOR_DISAGREEMENTS, SIMULATIONS, SIMULATION_REVERTS,
        REFERENCE_CHECKS, STALE_DROPPED, QUARANTINED, SIMULATOR_REFORKS, SIMULATION_HALTED,
        SIMULATOR_PREFETCHES,
    ),
    "submit": (
        SUBMISSION_LATENCY, BUNDLES, BUNDLE_SUCCESS_RATE, STRATEGY_SUCCESS_RATE, PROFIT_WEI,
        PROFIT_ETH_PER_HOUR, GAS_SPENT_WEI, GAS_EFFICIENCY_RATIO, GAS_PRICE, EMERGENCY_STOP,
    ),
}  # fmt: skip


def all_metrics() -> list[MetricWrapperBase]:
    return [m for m in globals().values() if isinstance(m, MetricWrapperBase)]


def owner_of(metric: MetricWrapperBase) -> str | None:
    """The service that owns `metric`, or None if every service exports it."""
    return next((s for s, owned in OWNED_BY.items() if metric in owned), None)


def registry_for(service: str) -> CollectorRegistry:
    """What `service`'s /metrics serves: its own metrics, the shared ones, process and GC."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    for metric in all_metrics():
        if owner_of(metric) in (None, service):
            registry.register(metric)
    return registry
