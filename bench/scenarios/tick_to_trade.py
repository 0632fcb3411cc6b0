"""Scenario 3: latency per stage and tick-to-trade on the full pipeline (ingest, detect,
simulate, submit as real processes on the devnet with 1 s blocks): Mev-Seen-Ns to opportunity,
to simulated bundle, to the signed transaction handed to the RPC, from each service's own
histogram. Two loads: the seeded devnet flow (user swaps in the public mempool, so ingest's RPC
side is in these numbers), then synthetic pending swaps at 1,000 triggers/s on the mempool
subject. Each window of a few seconds is one run; the table gives the median over windows.

The baseline column is DESIGN §9's target, not a measurement (each from Mev-Seen-Ns):
detection p95 < 3 ms, simulation p95 < 2 ms on warm state, tick-to-trade p95 < 10 ms.
"""

from __future__ import annotations

import asyncio
import threading
import time

from mev_common import subjects
from mev_common.bus import Bus
from mev_common.devnet.flow import run_flow

from bench.pacing import paced
from bench.pipeline_ready import missing_stages
from bench.results import Row, ScenarioResult
from bench.stack import CHAIN_ID, Stack, devnet_stack, histogram_counts, window, window_quantile
from bench.stats import RunStats, Summary, ratio, summarize
from bench.swaps import ingest_headers, pending_swaps

KEY = "tick_to_trade"
TITLE = "Latency per stage, tick-to-trade"
STAGES = (  # (label, service, histogram, DESIGN §9 target p95 in ms)
    ("seen → opportunity", "detect", "mev_bot_detection_latency_seconds", 3.0),
    ("seen → simulated bundle", "simulate", "mev_bot_simulation_latency_seconds", 2.0),
    ("seen → signed tx to RPC", "submit", "mev_bot_submission_latency_seconds", 10.0),
)


def _scrape(stack: Stack) -> dict[str, dict[float, float]]:
    return {
        service: histogram_counts(stack.metrics(service), name) for _, service, name, _ in STAGES
    }


def _windows(stack: Stack, seconds: float, every: float, busy: threading.Event) -> list[dict]:
    """Per-window bucket counts of each stage while `busy` is set (or for `seconds`)."""
    out = []
    before = _scrape(stack)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and busy.is_set():
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
        after = _scrape(stack)
        out.append({s: window(before[s], after[s]) for s in after})
        before = after
    return out


def _rows(load: str, windows: list[dict], result: ScenarioResult) -> None:
    for label, service, _, target in STAGES:
        runs = []
        for counts in windows:
            c = counts[service]
            p50, p95 = window_quantile(c, 0.5), window_quantile(c, 0.95)
            if p50 is not None and p95 is not None:
                runs.append(RunStats(p50, p95, int(c.get(float("inf"), 0))))
        observed = sum(r.count for r in runs)
        if not runs:
            result.details[f"{load}: {label}"] = "no observations"
            continue
        ours = summarize(runs)
        base = None if target is None else Summary(target, target, 1)
        result.rows.append(
            Row(
                f"{load}: {label}",
                "ms",
                ours,
                "DESIGN §9 target p95" if target else "",
                base,
                ratio(ours.p95, target),
                "ours p95/target" if target else "",
                f"{observed:,} observed in {len(runs)} windows",
            )
        )


async def _synthetic(stack: Stack, rate: float, seconds: float) -> None:
    payloads = pending_swaps(stack.deployment, int(rate * seconds), seed=33)
    bus = await Bus.connect(stack.nats.url, "bench-triggers", attempts=3)
    subject = subjects.mempool(CHAIN_ID)
    try:

        async def send(i: int) -> None:
            tx_hash, payload = payloads[i]
            await bus.js.publish(subject, payload, headers=ingest_headers(tx_hash))

        await paced(len(payloads), rate, send)
    finally:
        await bus.close()


def run(tiny: bool = False) -> ScenarioResult:
    missing = missing_stages()
    if missing:
        return ScenarioResult.unavailable(KEY, TITLE, missing)
    blocks, flow_rate, window_s, burst_s, burst_rate = (
        (3, 5.0, 1.5, 1.0, 100.0) if tiny else (24, 10.0, 4.0, 3.0, 1_000.0)
    )
    result = ScenarioResult(KEY, TITLE)
    with devnet_stack(block_time=1) as stack:
        stack.start("ingest", "detect", "simulate", "submit")
        busy = threading.Event()
        busy.set()

        def flow() -> None:
            try:
                run_flow(stack.node.rpc_url, stack.deployment, 7, flow_rate, blocks, emit=None)
            finally:
                busy.clear()

        thread = threading.Thread(target=flow, daemon=True)
        thread.start()
        windows = _windows(stack, blocks * 2.0 + 10, window_s, busy)
        thread.join(timeout=30)
        _rows(f"devnet flow {flow_rate:.0f} swaps/s", windows, result)

        burst = []
        for _ in range(1 if tiny else 2):
            before = _scrape(stack)
            asyncio.run(_synthetic(stack, burst_rate, burst_s))
            time.sleep(2.0)  # let simulate and submit finish what the burst caused
            after = _scrape(stack)
            burst.append({s: window(before[s], after[s]) for s in after})
        _rows(f"{burst_rate:,.0f} triggers/s", burst, result)
    if not result.rows:
        return ScenarioResult.unavailable(KEY, TITLE, "no stage observed a trigger")
    return result
