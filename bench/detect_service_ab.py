"""`python -m bench.detect_service_ab --base PATH [--rates 500,1000] [--rounds 2]`: the real
detect service through NATS, this checkout against another (e.g. a copy of main), alternating
on one devnet stack, and the messages both sides published compared.

Why: bench/detect_ab.py compares detect's pure path in process; what a trigger costs through
NATS (decode, the pull consumer, publishes, acks, metrics, asyncio) shows only in the service
process, and on a shared 2-core machine only side by side in one run means anything. Each side
runs scenario 2's steps (bench/scenarios/throughput.py: bench/swaps.py's real backrun candidates
paced into `mev.<chain>.mempool`) in a fresh detect process started from its checkout, the sides
alternating round after round on one stack. Both see the same head (ingest's block, replayed to
each new process) and the same payloads, so both must publish the same opportunities and
withdrawals: recorded off core NATS and compared in order within each subject. Per step:
detect's process CPU ÷ triggers (user + system, /proc) and exact seen → published samples
(p50/p95 with n). `--split DIR` runs both sides under bench/detect_split.py's counters and
prints each step's CPU by part; `--cprofile DIR` writes each run's cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mev_common import subjects
from mev_common.bus import Bus
from mev_common.subjects import HEADER_MSG_ID, HEADER_SEEN_NS, HEADER_TRACE

from bench.detect_split import PROFILED, SPLIT
from bench.pacing import paced
from bench.scenarios.throughput import HISTOGRAM, TARGET_MS, detect_counts
from bench.stack import CHAIN_ID, Stack, devnet_stack
from bench.stats import quantile
from bench.swaps import pending_swaps
from tests.support.stack import ServiceProcess

HERE = Path(__file__).resolve().parents[1]
WARM = 200
Counters = dict[str, dict[str, float]]


def _cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of `pid`, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def start_detect(
    stack: Stack, checkout: Path, driver: str | None, out: Path | None
) -> ServiceProcess:
    """Detect from `checkout` (its code first on the path, this venv's interpreter)."""
    paths = os.pathsep.join(map(str, [checkout, checkout / "libs/common", checkout / "libs/ops"]))
    env = {**os.environ, "MEV_INSTANCE": "detect-ab", "PYTHONPATH": paths,
           "MEV_LATENCY_SAMPLES_DIR": str(stack.samples_dir)}  # fmt: skip
    proc = ServiceProcess("detect", stack.config, stack.base / "detect.log")
    command = ["-c", driver, str(out)] if driver else ["-m", "services.detect"]
    with open(proc.log_path, "ab") as log:
        proc.proc = subprocess.Popen(
            [sys.executable, *command, "--config", str(stack.config)],
            cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    stack.services["detect"] = proc
    proc.wait_health(200, timeout_s=90)
    return proc


class Recorder:
    """Every opportunity and withdrawal detect sends (subject NUL payload), off core NATS."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    async def on_msg(self, msg: Any) -> None:
        self.got.append(msg.subject.encode() + b"\0" + msg.data)


async def step(stack: Stack, bus: Bus, pid: int, batch: list[tuple[str, bytes]], rate: float,
               tag: str) -> dict[str, Any]:  # fmt: skip
    """One paced step into the running detect: CPU per trigger, samples, counts."""
    before = await asyncio.to_thread(detect_counts, stack, 1)
    await asyncio.to_thread(stack.latencies)

    async def send(i: int) -> None:
        tx_hash, payload = batch[i]
        headers = {HEADER_MSG_ID: f"{tag}:{tx_hash}", HEADER_TRACE: tx_hash,
                   HEADER_SEEN_NS: str(time.time_ns())}  # fmt: skip
        await bus.js.publish(subjects.mempool(CHAIN_ID), payload, headers=headers)

    cpu0 = _cpu_s(pid)
    achieved = await paced(len(batch), rate, send)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = await asyncio.to_thread(detect_counts, stack, 1)
        if now["processed"] - before["processed"] >= len(batch):
            break
        await asyncio.sleep(0.05)
    user, system = (b - a for a, b in zip(cpu0, _cpu_s(pid), strict=True))
    after = await asyncio.to_thread(detect_counts, stack, 1)
    ms = (await asyncio.to_thread(stack.latencies)).get(("detect", HISTOGRAM, "pending"), [])
    return {"sent": achieved, "cpu_us": (user + system) / len(batch) * 1e6, "ms": ms,
            "system": system / (user + system) if user + system else 0.0,
            "opps": after["opportunities"] - before["opportunities"],
            "withdrawn": after["withdrawn"] - before["withdrawn"]}  # fmt: skip


async def counters(proc: ServiceProcess, path: Path) -> Counters:
    """detect_split's counters now (SIGUSR1 makes the process write them)."""
    await asyncio.to_thread(path.unlink, True)
    proc.signal(signal.SIGUSR1)
    for _ in range(250):
        await asyncio.sleep(0.02)
        if await asyncio.to_thread(path.exists):
            return json.loads(await asyncio.to_thread(path.read_text))
    raise RuntimeError("detect wrote no split counters")


def print_split(a: Counters, b: Counters, n: int) -> None:
    spent = {k: v - a["spent"].get(k, 0.0) for k, v in b["spent"].items()}
    for label in sorted(spent, key=lambda k: -spent[k]):
        count = b["calls"].get(label, 0) - a["calls"].get(label, 0)
        print(f"    {spent[label] / n * 1e6:7.1f} µs/trigger  {label} ({count} calls)")


def _line(got: dict[str, Any]) -> str:
    ms = got["ms"]
    p = (f"p50 {quantile(ms, 0.5):.2f} / p95 {quantile(ms, 0.95):.2f} ms (n={len(ms)})"
         if ms else "no samples")  # fmt: skip
    return (f"CPU {got['cpu_us']:.0f} µs/trigger ({got['system']:.0%} system); {p}; "
            f"opportunities {got['opps']:.0f}, withdrawn {got['withdrawn']:.0f}; "
            f"load {os.getloadavg()[0]:.1f}")  # fmt: skip


async def run(args: argparse.Namespace) -> bool:
    sides = {"before": args.base.resolve(), "after": HERE}
    rates = [float(r) for r in args.rates.split(",")]
    sizes = [int(r * args.seconds) for r in rates]
    results: dict[tuple[str, float], list[dict[str, Any]]] = {}
    same = True
    with devnet_stack() as stack:
        stack.start("ingest")
        stack.rpc("anvil_mine", ["0x1"])  # detect needs a head to apply pending swaps on
        bus = await Bus.connect(stack.nats.url, "bench-detect-ab", attempts=3)
        recorder = Recorder()
        await bus.nc.subscribe(subjects.all_opportunities(CHAIN_ID), cb=recorder.on_msg)
        await bus.nc.subscribe(subjects.withdrawals(CHAIN_ID), cb=recorder.on_msg)
        await asyncio.sleep(1.0)
        head = await bus.last_payload("BLOCKS", subjects.blocks(CHAIN_ID))
        assert head, "ingest published no block"
        try:
            for r in range(args.rounds):
                payloads = pending_swaps(stack.deployment, WARM + sum(sizes), seed=100 + r)
                out: dict[str, list[bytes]] = {}
                for side in list(sides) if r % 2 == 0 else list(reversed(sides)):
                    tag = f"{side}{r}"
                    driver, path = (SPLIT, args.split / f"{tag}.json") if args.split else (
                        (PROFILED, args.cprofile / f"{tag}.prof") if args.cprofile else (None, None)
                    )  # fmt: skip
                    proc = await asyncio.to_thread(start_detect, stack, sides[side], driver, path)
                    assert proc.proc is not None
                    await bus.js.publish(subjects.blocks(CHAIN_ID), head,
                                         headers={HEADER_MSG_ID: f"head:{tag}"})  # fmt: skip
                    await asyncio.sleep(0.5)
                    recorder.got = []
                    await step(stack, bus, proc.proc.pid, payloads[:WARM], 200.0, tag)
                    cursor = WARM
                    for rate, n in zip(rates, sizes, strict=True):
                        split0 = await counters(proc, path) if args.split and path else None
                        batch = payloads[cursor : cursor + n]
                        got = await step(stack, bus, proc.proc.pid, batch, rate, tag)
                        cursor += n
                        results.setdefault((side, rate), []).append(got)
                        print(f"round {r + 1} {side} {rate:,.0f}/s (sent {got['sent']:,.0f}/s): "
                              f"{_line(got)}", flush=True)  # fmt: skip
                        if split0 is not None and path:
                            print_split(split0, await counters(proc, path), n)
                    await asyncio.sleep(0.3)
                    # one subscription per subject, each in its own task: order within a subject
                    out[side] = sorted(recorder.got, key=lambda m: m.partition(b"\0")[0])
                    proc.signal(signal.SIGTERM)
                    await asyncio.to_thread(proc.wait, 30)
                match = out["before"] == out["after"]
                same = same and match
                print(
                    f"round {r + 1}: same messages on both sides: {match} "
                    f"({len(out['after'])} after, {len(out['before'])} before)",
                    flush=True,
                )
        finally:
            await bus.close()
    for (side, rate), steps in results.items():
        ms = [x for s in steps for x in s["ms"]]
        cpu = statistics.median(s["cpu_us"] for s in steps)
        p95 = ", ".join(f"{quantile(s['ms'], 0.95):.2f} (n={len(s['ms'])})" for s in steps
                        if s["ms"])  # fmt: skip
        within = sum(x < TARGET_MS for x in ms) / len(ms) if ms else 0.0
        each = ", ".join(f"{s['cpu_us']:.0f}" for s in steps)
        print(f"{side} {rate:,.0f}/s: CPU median {cpu:.0f} µs/trigger over {len(steps)} steps "
              f"({each}); p95 ms per step {p95}; "
              f"< 3 ms {within:.1%} of {len(ms)}")  # fmt: skip
    print(f"same messages in every round: {same}")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (before)")
    parser.add_argument("--rates", default="500,1000")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--split", type=Path, default=None, help="dir: per-part CPU counters")
    parser.add_argument("--cprofile", type=Path, default=None, help="dir: each run's cProfile")
    if not asyncio.run(run(parser.parse_args())):
        raise SystemExit("the two sides published different messages")


if __name__ == "__main__":
    main()
