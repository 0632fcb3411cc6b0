"""Scenario 3: latency per stage and tick-to-trade on the full pipeline (ingest, detect,
simulate, submit as real processes on the devnet with 1 s blocks): Mev-Seen-Ns to opportunity,
to simulated bundle, to the signed transaction handed to the RPC, as exact samples (every
observation each service made, bench/stack.py), nearest-rank p50/p95 with their count, split
by trigger (pending: a backrun of a pending swap; block: an arbitrage after a block).

Five loads in one stack, each row saying which:
- a backrun flow (bench/backrun_flow.py): real signed swaps big enough to backrun, one per user
  and pool pair a block, sent to the node's public mempool, until the pending-trigger rows have
  MIN_OBSERVATIONS or a block cap: what the pending rows' targets are about. First, because a
  strategy halt (simulate's py-evm check) or submit's emergency stop in an earlier load would
  end its pending rows; each note shows `halted` or submit's refusals when one happened;
- the seeded devnet flow (user swaps in the public mempool, so ingest's RPC side is in these
  numbers), run until every row, pending and block trigger, has MIN_OBSERVATIONS or a time cap:
  its small swaps rarely leave a backrun worth its gas (~0.25 pending bundles a second), so
  that takes ~15 minutes (871-873 s in two runs);
- the `make run` burst pattern (bench/burst.py: a swap from each flow user right after each
  block, timed from the send to the node to detect's first opportunity for it), until that row
  and the pending-trigger rows have MIN_OBSERVATIONS or a block cap (its block-trigger rows
  stay below it, said in their note);
- synthetic pending swaps on the mempool subject (bench/swaps.py: each a real backrun candidate
  whose sender holds the ETH it swaps, V2 and V3 in the devnet flow's mix; victims not on the
  node) at a rate detect holds and at
  1,000 triggers/s, with triggers in, opportunities and bundles out, and how long detect took
  to drain them (at 1,000/s a backlog: its seen → opportunity is queueing time). Their bundles
  are few whatever the rate: simulate publishes one bundle per pool a block (`superseded`).
Simulate's and submit's outcomes over each load are in the notes: why bundles are fewer than
opportunities (`superseded`: one bundle per pool a block; `stale_timeout`: older than
performance.decision_timeout_ms when simulate got it). A row below MIN_OBSERVATIONS says so in
its note: its p95 is not a p95 yet.

The baseline column is DESIGN §9's target, not a measurement (each from Mev-Seen-Ns):
detection p95 < 3 ms, simulation p95 < 2 ms on warm state, tick-to-trade p95 < 10 ms.
"""

from __future__ import annotations

import asyncio
import threading
import time

from mev_common import subjects
from mev_common.bus import Bus
from mev_ops.devnet.flow import run_flow

from bench.backrun_flow import run_backrun_flow
from bench.burst import run_bursts
from bench.load_outcomes import (
    added,
    detect_processed,
    ledger_refusals,
    load_note,
    load_snapshot,
    outcome_note,
    pipeline_counts,
    sim_outcomes,
    wait_settled,
)
from bench.pacing import paced
from bench.pipeline_ready import missing_stages
from bench.results import Row, ScenarioResult
from bench.scenarios.throughput import MOST
from bench.stack import CHAIN_ID, Stack, devnet_stack, merge, wait_heads, wait_until
from bench.stats import Summary, exact, ratio
from bench.swaps import V3_SHARE, fund_senders, ingest_headers, pending_swaps

KEY = "tick_to_trade"
TITLE = "Latency per stage, tick-to-trade"
MIN_OBSERVATIONS = 200
# The devnet flow runs until its pending rows have MIN_OBSERVATIONS, its slowest: ~0.23-0.25
# pending bundles a second, nearly all signed (full bench 2026-12-02 05:30: 86 bundles, 85
# signed in ~334 s of flow; h96's `--only tick_to_trade`, load 3-5: 203 and 200 in 871 s);
# its block-trigger rows (~0.6 a second) are there long before. The cap is 1.5x that 871 s.
FLOW_CAP_S = 1_320.0
# The make-run bursts until their sent → opportunity and pending rows have MIN_OBSERVATIONS:
# ~1.5 signed pending backruns a block (77 in 50 blocks at 05:30), so ~130 blocks.
BURST_MAX_BLOCKS = 200
# The backrun flow yields ~1.2 pending bundles a block whatever its swaps per block (3 or 4:
# 36 or 38 in 30 blocks; the rest `superseded`, one bundle per pool a block): 200 in ~170.
BACKRUN_PER_BLOCK, BACKRUN_MAX_BLOCKS = 3, 200
# synthetic triggers: (rate per s, seconds); the first a rate detect holds, then 1,000/s
SYNTHETIC = ((100.0, 10.0), (1_000.0, 3.0))
SIMULATED, SIGNED = "mev_bot_simulation_latency_seconds", "mev_bot_submission_latency_seconds"
# (label, service, histogram, trigger label, DESIGN §9 target p95 in ms). A block trigger's
# seen is ingest's head (its path holds the block's log fetch and whole search): apart, with n.
STAGES = (
    ("seen → opportunity", "detect", "mev_bot_detection_latency_seconds", "pending", 3.0),
    ("seen → simulated bundle, pending trigger", "simulate", SIMULATED, "pending", 2.0),
    ("seen → simulated bundle, block trigger", "simulate", SIMULATED, "block", 2.0),
    ("seen → signed tx to RPC, pending trigger", "submit", SIGNED, "pending", 10.0),
    ("seen → signed tx to RPC, block trigger", "submit", SIGNED, "block", 10.0),
)
# the devnet flow runs until every stage, the backrun flow and the bursts until the pending
# rows have MIN_OBSERVATIONS
PENDING_STAGES = tuple(stage for stage in STAGES if stage[3] == "pending")
HOP_METRIC = "mev_bot_hop_latency_seconds"
Logged = dict[tuple[str, str, str], list[float]]


def _stage(logged: Logged, service: str, name: str, label: str) -> list[float]:
    return logged.get((service, name, label), [])


def _floor_met(logged: Logged, stages: tuple[tuple[str, str, str, str, float], ...]) -> bool:
    return all(len(_stage(logged, s, n, v)) >= MIN_OBSERVATIONS for _, s, n, v, _ in stages)


def _floor(n: int) -> str:
    """A row below MIN_OBSERVATIONS says so: its p95 is not a p95 yet."""
    return f"; only {n} < {MIN_OBSERVATIONS} observations" if n < MIN_OBSERVATIONS else ""


def _rows(
    load: str, logged: Logged, result: ScenarioResult, extra: str = "", why: str = ""
) -> None:
    """One row per stage and trigger; `why` (the load's outcomes) on the bundle and signed
    rows, where it explains their count."""
    for label, service, name, value, target in STAGES:
        samples = _stage(logged, service, name, value)
        if not samples:
            result.details[f"{load}: {label}"] = "no observations"
            continue
        ours = exact(samples)
        floor = _floor(len(samples))
        result.rows.append(
            Row(
                f"{load}: {label}",
                "ms",
                ours,
                "DESIGN §9 target p95",
                Summary(target, target, 1),
                ratio(ours.p95, target),
                "ours p95/target",
                f"exact samples{floor}{extra}{why if service != 'detect' else ''}",
            )
        )
        result.samples[f"{load}: {label}"] = samples


def _hops(load: str, logged: Logged, result: ScenarioResult) -> None:
    """Where the time goes (mev_bot_hop_latency_seconds): p50 / p95 (n) of each hop, printed
    and kept in the details."""
    hops = {
        label: exact(samples)
        for (_, name, label), samples in sorted(logged.items())
        if name == HOP_METRIC and samples
    }
    text = {k: f"{v.p50:.3g} / {v.p95:.3g} ms (n={v.samples})" for k, v in hops.items()}
    result.details[f"{load}: hops"] = text
    for hop, figure in text.items():
        print(f"  {load}: {hop} {figure}", flush=True)


def _counts(logged: Logged) -> str:
    """Each stage's observations so far, for the progress lines of a long load."""
    return ", ".join(
        f"{s} {v} {len(_stage(logged, s, n, v))}" for _, s, n, v, _ in STAGES if s != "detect"
    )


def _flow(stack: Stack, rate: float, cap_s: float) -> Logged:
    """The devnet flow until every stage has MIN_OBSERVATIONS (or `cap_s`), a line of counts
    every minute."""
    logged: Logged = {}
    stop = threading.Event()
    thread = threading.Thread(
        target=run_flow,
        args=(stack.node.rpc_url, stack.deployment, 7, rate),
        kwargs={"stop": stop, "emit": None},
        daemon=True,
    )
    thread.start()
    started = time.monotonic()
    deadline, line = started + cap_s, started + 60.0
    try:
        while time.monotonic() < deadline and thread.is_alive():
            time.sleep(1.0)
            merge(logged, stack.latencies())
            if _floor_met(logged, STAGES):
                break
            if time.monotonic() >= line:
                line += 60.0
                at = time.monotonic() - started
                print(f"  devnet flow {at:.0f} s: {_counts(logged)}", flush=True)
    finally:
        stop.set()
        thread.join(timeout=30)
    time.sleep(2.0)
    merge(logged, stack.latencies())
    print(f"  devnet flow ran {time.monotonic() - started:.0f} s: {_counts(logged)}", flush=True)
    return logged


def _bursts(stack: Stack, max_blocks: int) -> tuple[dict, Logged]:
    """The make-run bursts until their sent → opportunity and pending-trigger stages have
    MIN_OBSERVATIONS (or `max_blocks`); returns run_bursts' answer and the samples."""
    logged: Logged = {}

    def enough(with_opportunity: int) -> bool:
        merge(logged, stack.latencies())
        return with_opportunity >= MIN_OBSERVATIONS and _floor_met(logged, PENDING_STAGES)

    burst = asyncio.run(run_bursts(stack, max_blocks, enough=enough))
    merge(logged, stack.latencies())
    return burst, logged


async def _synthetic(stack: Stack, payloads: list[tuple[str, bytes]], rate: float) -> None:
    bus = await Bus.connect(stack.nats.url, "bench-triggers", attempts=3)
    subject = subjects.mempool(CHAIN_ID)
    try:

        async def send(i: int) -> None:
            tx_hash, payload = payloads[i]
            await bus.js.publish(subject, payload, headers=ingest_headers(tx_hash))

        await paced(len(payloads), rate, send)
    finally:
        await bus.close()


def _backrun(stack: Stack, max_blocks: int) -> tuple[Logged, int]:
    """The backrun flow until the pending-trigger stages have MIN_OBSERVATIONS (or
    `max_blocks`); returns the samples and the swaps sent."""
    logged: Logged = {}

    def enough() -> bool:
        merge(logged, stack.latencies())
        return _floor_met(logged, PENDING_STAGES)

    report = run_backrun_flow(
        stack.node.rpc_url, stack.deployment, max_blocks, BACKRUN_PER_BLOCK, enough=enough
    )
    time.sleep(2.0)
    merge(logged, stack.latencies())
    if report.rejected:
        print(f"  backrun flow: {len(report.rejected)} swaps refused: {report.rejected[0]}")
    return logged, len(report.tx_hashes)


def _synthetic_load(
    stack: Stack,
    rate: float,
    seconds: float,
    seed: int,
    result: ScenarioResult,
    v3_share: float = V3_SHARE,
    label: str = "",
) -> None:
    """`rate` triggers a second for `seconds` on the mempool subject, then every trigger
    processed by detect (or 60 s) and time for simulate and submit; rows with the counts.
    `v3_share`: of SwapRouter victims (the devnet flow's by default, bench/swaps.py)."""
    n = int(rate * seconds)
    fund_senders(stack.node.rpc_url, seed, n, 10**21)
    wait_heads(stack, stack.head() + 1)  # the balances in a block before the swaps simulate
    payloads = pending_swaps(stack.deployment, n, seed=seed, eth_in=True, v3_share=v3_share)
    stack.latencies()
    before, outcomes, refusals = pipeline_counts(stack), sim_outcomes(stack), ledger_refusals(stack)
    started = time.monotonic()
    asyncio.run(_synthetic(stack, payloads, rate))
    drained = wait_until(lambda: detect_processed(stack) - before["processed"] >= n, 60.0, 0.5)
    drain_s = time.monotonic() - started
    wait_settled(stack)  # simulate and submit have handled what detect published
    after = pipeline_counts(stack)
    logged = stack.latencies()
    hit = int(after["hit"] - before["hit"])
    signed = sum(len(_stage(logged, "submit", SIGNED, t)) for t in ("pending", "block"))
    counts = (
        f"; triggers in {n:,}, with an opportunity {hit:,}, opportunities out "
        f"{int(after['opportunities'] - before['opportunities']):,}, bundles out "
        f"{int(after['bundles'] - before['bundles']):,}, signed {signed:,}"
    )
    if not drained:
        counts += "; detect had not processed every trigger after 60 s"
    else:  # a detect slower than the rate drains after the sends: queueing, not detection
        counts += f"; detect done {drain_s:.1f} s after the first of {seconds:g} s of sends"
    why = outcome_note(outcomes, sim_outcomes(stack)) + (
        "; victims not on the node: a signed backrun reverts on chain"
    )
    load = f"{rate:,.0f} triggers/s{label}"
    print(f"  {load}{counts}{why}", flush=True)
    _rows(load, logged, result, counts, why)
    _hops(load, logged, result)
    if drained and hit < MOST * n:
        raise AssertionError(
            f"detect published an opportunity for {hit} of {n} triggers: the "
            "synthetic swaps are not backrun candidates"
        )
    booked = added(refusals, ledger_refusals(stack))
    print(f"  {load}: submit's ledger {booked}", flush=True)
    opportunities = int(after["opportunities"] - before["opportunities"])
    detail = {"triggers": n, "with_opportunity": hit, "opportunities": opportunities,
              "signed": signed, "drain_s": drain_s, "ledger": booked}  # fmt: skip
    result.details[f"synthetic {load}"] = detail


def run(tiny: bool = False) -> ScenarioResult:
    missing = missing_stages()
    if missing:
        return ScenarioResult.unavailable(KEY, TITLE, missing)
    flow_rate, flow_cap_s, backrun_blocks, burst_blocks, synthetic = (
        (5.0, 8.0, 4, 3, ((20.0, 1.0), (100.0, 1.0)))
        if tiny
        else (10.0, FLOW_CAP_S, BACKRUN_MAX_BLOCKS, BURST_MAX_BLOCKS, SYNTHETIC)
    )
    result = ScenarioResult(KEY, TITLE)
    with devnet_stack(block_time=1) as stack:
        stack.start("ingest", "detect", "simulate", "submit")
        # the backrun flow first: a strategy halt (a py-evm disagreement) or an emergency stop
        # (consecutive reverts) in an earlier load would end its pending rows; each load's
        # note says when one happened in it (`halted`, submit's ledger)
        stack.latencies()
        before, refusals = load_snapshot(stack), ledger_refusals(stack)
        backrun, sent = _backrun(stack, backrun_blocks)
        why = load_note(stack, before)
        booked = added(refusals, ledger_refusals(stack))
        result.details["backrun flow ledger"] = booked
        print(f"  backrun flow: submit's ledger {booked}", flush=True)
        load = "backrun flow (real $10-30k WETH swaps, 3 a block, distinct users, node mempool)"
        _rows(load, backrun, result, f"; {sent} swaps", why)
        _hops("backrun flow", backrun, result)
        result.details["backrun flow outcomes"] = why
        print(f"  backrun flow: {sent} swaps{why}", flush=True)

        stack.latencies()
        load = f"devnet flow {flow_rate:.0f} swaps/s"
        before = load_snapshot(stack)
        flow = _flow(stack, flow_rate, flow_cap_s)
        why = load_note(stack, before)
        _rows(load, flow, result, why=why)
        _hops(load, flow, result)
        result.details["devnet flow outcomes"] = why
        print(f"  devnet flow outcomes{why}", flush=True)

        stack.latencies()
        before = load_snapshot(stack)
        burst, logged = _bursts(stack, burst_blocks)
        why = load_note(stack, before)
        sent, hit, blocks = burst["sent"], burst["with_opportunity"], burst["blocks"]
        print(f"  burst: {sent} swaps sent over {blocks} blocks, {hit} with an opportunity"
              f"{why}", flush=True)  # fmt: skip
        if burst["latencies"]:
            e2e = exact(burst["latencies"])
            result.rows.append(
                Row(
                    "make-run bursts (Poisson 4/block, ≤ 1 per user) after each block: "
                    "sent to node → opportunity",
                    "ms",
                    e2e,
                    "DESIGN §9 detection target p95",
                    Summary(3.0, 3.0, 1),
                    ratio(e2e.p95, 3.0),
                    "ours p95/target",
                    f"exact; {sent} swaps over {blocks} blocks, {hit} with an "
                    f"opportunity; includes the node, ingest and NATS{_floor(e2e.samples)}",
                )
            )
        _rows("make-run bursts", logged, result, why=why)
        result.details["burst"] = {"sent": sent, "with_opportunity": hit, "blocks": blocks}

        for k, (rate, seconds) in enumerate(synthetic):
            _synthetic_load(stack, rate, seconds, 33 + k, result)
    if not result.rows:
        return ScenarioResult.unavailable(KEY, TITLE, "no stage observed a trigger")
    return result
