"""Scenario 2, throughput: synthetic pending router swaps at rising rates into the real detect
service (published on `mev.<chain>.mempool` with Mev-Seen-Ns, as ingest does), and the highest
rate detect sustains with p95 < 3 ms (DESIGN §9: target >= 3,000 tx/s on 2 cores).

Every trigger is a real backrun candidate (bench/swaps.py: its own sender, the right nonce, a
tip no earlier swap beats; Router02 and SwapRouter victims in the devnet flow's mix), and the
scenario checks that detect publishes an opportunity for most of them: triggers in, triggers
with an opportunity, opportunities out and withdrawn are printed per step. Latency is exact:
every Mev-Seen-Ns → opportunities-published observation detect makes, logged one by one
(bench/stack.py), nearest-rank p50/p95 with the count. A step is sustained if its p95 < 3 ms,
every tx was processed within a short grace, and the generator reached 90% of the rate. The
baseline is the bare floor at the same rates: a nats-py consumer that only acks. With `replicas`
> 1 (the full run also tries 2), detect replicas share the mempool consumer (docs/RUNBOOK.md);
`python -m bench.detect_replicas` runs 1 and 2 side by side on one stack. Ingest's RPC side is
not in these numbers (scenario 3 and the burst row are), and the generator shares the 2 cores
with NATS and detect. A first row gives detect's own CPU per trigger in process
(bench/detect_profile.py: no NATS, exact samples), which others' load on a shared machine moves
far less than any latency.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from dataclasses import dataclass

from mev_common import subjects
from mev_common.bus import Bus
from mev_common.subjects import StreamSpec
from mev_ops.pipeline_status import total

from bench import detect_profile
from bench.pacing import paced
from bench.results import Row, ScenarioResult
from bench.scenarios.bus_floor import STREAM, raw_consume
from bench.stack import CHAIN_ID, Stack, devnet_stack, wait_heads
from bench.stats import RunStats, ratio, run_stats, summarize, summarize_values
from bench.swaps import ingest_headers, pending_swaps

KEY = "throughput"
TITLE = "Throughput: pending swaps into detect"
TARGET_MS = 3.0
HISTOGRAM = "mev_bot_detection_latency_seconds"
PROCESSED = "mev_bot_transactions_processed_total"
PUBLISHED = "mev_bot_messages_published_total"
DROPPED = "mev_bot_opportunities_dropped_total"
GRACE_S = 2.0
DRAIN_S = 45.0
MOST = 0.5  # at least this share of triggers must yield an opportunity


@dataclass
class Step:
    """One rate step's outcome for one side; `samples` are exact latencies in ms."""

    rate: float
    achieved: float
    samples: list[float]
    drained: bool
    triggers: int = 0
    with_opportunity: int = 0
    opportunities: int = 0
    withdrawn: int = 0
    crowded: int = 0
    cpu_s: float = 0.0  # detect's process CPU over the step (all replicas)
    behind: int = 0  # replicas: triggers searched before their reader reached them

    @property
    def cpu_us(self) -> float:
        """Detect CPU per trigger (µs): what load on a shared machine barely moves."""
        return self.cpu_s / self.triggers * 1e6 if self.triggers else 0.0

    @property
    def stats(self) -> RunStats | None:
        return run_stats(self.samples) if self.samples else None

    @property
    def within(self) -> float:
        if not self.samples:
            return 0.0
        return sum(x < TARGET_MS for x in self.samples) / len(self.samples)

    @property
    def sustained(self) -> bool:
        stats = self.stats
        return (
            self.drained
            and stats is not None
            and stats.p95 < TARGET_MS
            and self.achieved >= 0.9 * self.rate
        )


def detect_counts(stack: Stack, replicas: int) -> dict[str, float]:
    """Detect's counters summed over its replicas (metrics and health)."""
    out = {"processed": 0.0, "opportunities": 0.0, "withdrawn": 0.0, "crowded": 0.0, "hit": 0.0,
           "cpu": 0.0, "behind": 0.0}  # fmt: skip
    for k in range(1, replicas + 1):
        samples = stack.metrics("detect", k)
        out["processed"] += total(samples, PROCESSED, stage="detect")
        out["cpu"] += total(samples, "process_cpu_seconds_total")
        out["opportunities"] += total(samples, PUBLISHED, subject="opportunities")
        out["withdrawn"] += total(samples, DROPPED, reason="backrun_withdrawn")
        out["crowded"] += total(samples, DROPPED, reason="backrun_crowded")
        out["crowded"] += total(samples, DROPPED, reason="backrun_victim_queued")
        key = "detect" if k == 1 else f"detect#{k}"
        with urllib.request.urlopen(stack.services[key].health_url(), timeout=5) as resp:
            pools = json.loads(resp.read())["checks"]["pools"]["detail"]
        out["hit"] += pools.get("pending_with_opportunity", 0)
        out["behind"] += pools.get("reader_behind", 0)
    return out


async def _detect_step(
    stack: Stack, bus: Bus, payloads: list[tuple[str, bytes]], rate: float, replicas: int = 1
) -> Step:
    subject = subjects.mempool(CHAIN_ID)
    before = await asyncio.to_thread(detect_counts, stack, replicas)
    await asyncio.to_thread(stack.latencies)  # drop what came before this step

    async def send(i: int) -> None:
        tx_hash, payload = payloads[i]
        await bus.js.publish(subject, payload, headers=ingest_headers(tx_hash))

    async def processed() -> float:
        counts = await asyncio.to_thread(detect_counts, stack, replicas)
        return counts["processed"] - before["processed"]

    achieved = await paced(len(payloads), rate, send)
    deadline = time.monotonic() + GRACE_S
    drained = False
    while time.monotonic() < deadline:
        if await processed() >= len(payloads):
            drained = True
            break
        await asyncio.sleep(0.05)
    if not drained:  # let the backlog clear so the next step starts clean
        until = time.monotonic() + DRAIN_S
        while time.monotonic() < until:
            if await processed() >= len(payloads):
                break
            await asyncio.sleep(0.2)
    after = await asyncio.to_thread(detect_counts, stack, replicas)
    logged = await asyncio.to_thread(stack.latencies)
    samples = logged.get(("detect", HISTOGRAM, "pending"), [])
    delta = {k: int(after[k] - before[k]) for k in after}
    return Step(rate, achieved, samples, drained, len(payloads), delta["hit"],
                delta["opportunities"], delta["withdrawn"], delta["crowded"],
                after["cpu"] - before["cpu"], delta["behind"])  # fmt: skip


async def _raw_step(bus: Bus, payloads: list[tuple[str, bytes]], rate: float) -> Step:
    subject = f"bench.raw.{uuid.uuid4().hex[:10]}"
    out: list[float] = []
    consume = asyncio.create_task(raw_consume(bus, subject, len(payloads), out, DRAIN_S))
    await asyncio.sleep(0.2)

    async def send(i: int) -> None:
        tx_hash, payload = payloads[i]
        await bus.js.publish(subject, payload, headers=ingest_headers(f"raw-{tx_hash}"))

    achieved = await paced(len(payloads), rate, send)
    elapsed_at_end = time.perf_counter()
    await consume
    drained = time.perf_counter() - elapsed_at_end <= GRACE_S and len(out) >= len(payloads)
    return Step(rate, achieved, out, drained, len(payloads))


def _best(steps: list[Step]) -> float:
    """Highest rate sustained in the run (0 if none)."""
    return max((step.rate for step in steps if step.sustained), default=0.0)


def _summary(steps: list[Step]) -> tuple[RunStats, ...]:
    return tuple(s.stats for s in steps if s.stats is not None)


async def _sweep(
    stack: Stack, rates: list[float], step_s: float, runs: int, replicas: int, raw: bool
) -> tuple[dict[float, list[Step]], dict[float, list[Step]]]:
    """Each run climbs the rates (two failed steps in a row end a side's climb)."""
    sizes = [int(r * step_s) for r in rates]
    warm = 200
    payloads = pending_swaps(stack.deployment, warm + sum(sizes) * runs, seed=8 + replicas)
    bus = await Bus.connect(stack.nats.url, "bench-feed", attempts=3)
    ours: dict[float, list[Step]] = {r: [] for r in rates}
    bare: dict[float, list[Step]] = {r: [] for r in rates}
    try:
        await bus.ensure_streams([StreamSpec(STREAM, ("bench.>",), max_age_s=600)])
        await _detect_step(stack, bus, payloads[:warm], 200.0, replicas)  # first use, not timed
        cursor = warm
        for _ in range(runs):
            ours_fails, raw_fails = 0, 0 if raw else 2
            for rate, n in zip(rates, sizes, strict=True):
                batch = payloads[cursor : cursor + n]
                cursor += n
                if ours_fails < 2:
                    step = await _detect_step(stack, bus, batch, rate, replicas)
                    ours[rate].append(step)
                    ours_fails = 0 if step.sustained else ours_fails + 1
                    print(
                        f"  detect x{replicas} {rate:,.0f}/s: {_step_line(step)}",
                        flush=True,
                    )
                if raw_fails < 2:
                    bare[rate].append(await _raw_step(bus, batch, rate))
                    raw_fails = 0 if bare[rate][-1].sustained else raw_fails + 1
    finally:
        await bus.close()
    return ours, bare


def _step_line(step: Step) -> str:
    stats = step.stats
    latency = "no samples" if stats is None else (
        f"p50 {stats.p50:.2f} / p95 {stats.p95:.2f} ms (n={stats.count})"
    )  # fmt: skip
    return (
        f"{latency}; triggers in {step.triggers}, with an opportunity {step.with_opportunity}, "
        f"opportunities out {step.opportunities}, withdrawn {step.withdrawn}, "
        f"crowded/queued {step.crowded}; detect CPU {step.cpu_us:.0f} µs/trigger"
        + (f"; reader behind {step.behind}" if step.behind else "")
    )


def _rows(
    result: ScenarioResult,
    label: str,
    rates: list[float],
    runs: int,
    ours: dict[float, list[Step]],
    bare: dict[float, list[Step]],
) -> None:
    best_ours = [_best([ours[r][i] for r in rates if len(ours[r]) > i]) for i in range(runs)]
    best_raw = [_best([bare[r][i] for r in rates if len(bare[r]) > i]) for i in range(runs)]
    ours_best = summarize_values(best_ours)
    raw_best = summarize_values(best_raw) if any(bare.values()) else None
    result.rows.append(
        Row(
            f"{label}: highest rate with p95 < 3 ms (tried up to {rates[-1]:,.0f}/s)",
            "tx/s",
            ours_best,
            "bare nats-py consumer" if raw_best else "",
            raw_best,
            ratio(ours_best.p50, raw_best and raw_best.p50),
            "ours/bare" if raw_best else "",
            "exact samples of detect's Mev-Seen-Ns → published; ingest's RPC side not in it",
        )
    )
    cpu = [s.cpu_us for group in ours.values() for s in group if s.triggers >= 200]
    if cpu:
        per_trigger = summarize_values(cpu)
        result.rows.append(
            Row(
                f"{label}: detect CPU per trigger (process CPU ÷ triggers)",
                "µs",
                per_trigger,
                note=f"median / p95 over {len(cpu)} steps; ≈ {1e6 / per_trigger.p50:,.0f} "
                "triggers/s per fully available core; others' load moves it less than latency",
            )
        )
    for rate in rates:
        ours_runs, raw_runs = _summary(ours[rate]), _summary(bare[rate])
        if not ours_runs:
            continue
        ours_summary = summarize(ours_runs)
        raw_summary = summarize(raw_runs) if raw_runs else None
        steps = ours[rate]
        triggers = sum(s.triggers for s in steps)
        hit = sum(s.with_opportunity for s in steps)
        result.rows.append(
            Row(
                f"{label}: detect at {rate:,.0f} tx/s offered",
                "ms",
                ours_summary,
                "bare nats-py consumer" if raw_summary else "",
                raw_summary,
                ratio(ours_summary.p95, raw_summary and raw_summary.p95),
                "ours/bare p95" if raw_summary else "",
                f"sustained in {sum(x.sustained for x in steps)}/{len(steps)} runs; "
                f"< 3 ms: {min(s.within for s in steps):.1%} (worst); "
                f"sent {min(s.achieved for s in steps):,.0f}/s; triggers in {triggers:,}, "
                f"with an opportunity {hit:,}, opportunities out "
                f"{sum(s.opportunities for s in steps):,}, withdrawn "
                f"{sum(s.withdrawn for s in steps):,}, crowded/queued "
                f"{sum(s.crowded for s in steps):,}",
            )
        )
        result.series.setdefault(f"{label} p95 (ms)", []).append((rate, ours_summary.p95))
        if raw_summary is not None:
            result.series.setdefault("bare consumer p95 (ms)", []).append((rate, raw_summary.p95))
    result.details[label] = {"best_ours": best_ours, "best_raw": best_raw}


def check_candidates(ours: dict[float, list[Step]]) -> tuple[int, int]:
    """Triggers in and triggers with an opportunity over every step (each drained or waited
    for); raises if detect published for fewer than MOST of them (not candidates then)."""
    steps = [s for group in ours.values() for s in group]
    triggers = sum(s.triggers for s in steps)
    hit = sum(s.with_opportunity for s in steps)
    if triggers and hit < MOST * triggers:
        raise AssertionError(
            f"detect published an opportunity for {hit} of {triggers} triggers: the synthetic "
            "swaps are not backrun candidates"
        )
    return triggers, hit


async def _measure(tiny: bool) -> ScenarioResult:
    rates, step_s, runs, replica_counts = (
        ([100.0, 200.0], 0.5, 1, (1,))
        if tiny
        else ([250.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0], 2.0, 2, (1, 2))
    )
    result = ScenarioResult(KEY, TITLE)
    # detect's own work, no NATS: the same kind of triggers through the Detector in process
    inside = await asyncio.to_thread(detect_profile.measure, 300 if tiny else 3000)
    result.rows.append(
        Row(
            "detect in process, no NATS: CPU per trigger (bench/detect_profile.py)",
            "µs",
            summarize([run_stats(inside["samples"])]),
            note=f"exact per-trigger CPU; {inside['published'].get('opportunities', 0):,} "
            f"opportunities for {inside['n']:,} triggers; load {inside['load'][0]:.1f}",
        )
    )
    for replicas in replica_counts:
        with devnet_stack() as stack:
            stack.start("ingest")
            stack.start("detect", replicas=replicas)
            stack.rpc("anvil_mine", ["0x1"])  # detect needs a head to apply pending swaps on
            await asyncio.to_thread(wait_heads, stack, stack.head())
            ours, bare = await _sweep(stack, rates, step_s, runs, replicas, raw=replicas == 1)
        # replicas book what they read in stream order (services/detect/peers.py), so they
        # decide as one detect does: the candidate check holds for them too
        triggers, hit = check_candidates(ours)
        label = "1 detect" if replicas == 1 else f"{replicas} detect replicas"
        print(f"  {label}: {hit} of {triggers} triggers yielded an opportunity", flush=True)
        _rows(result, label, rates, runs, ours, bare)
        result.details[f"{label} candidates"] = {"triggers": triggers, "with_opportunity": hit}
    return result


def run(tiny: bool = False) -> ScenarioResult:
    return asyncio.run(_measure(tiny))
