"""Detect's pending-swap path through NATS, in this process, without a chain: CPU per trigger
and exact seen → published samples.

    python -m bench.detect_bus_cpu [--rates 1000,2000,3000] [--seconds 2] [--runs 2]
        [--concurrency N] [--profile RATE [--profile-out FILE]]

Why: bench/detect_profile.py times detect's own work (no NATS, ~240 µs a trigger); the devnet
bench's detect process spends 600-950 µs a trigger through NATS, but with health, metrics and a
block reader beside it and a devnet on the same 2 cores. Here the Detector of detect_profile
(devnet-like pools, bench/swaps.py's real backrun candidates) runs behind the real consume loop
(mev_common.consumer, batched, with its pipelined publishes and acks) on a real nats-server,
fed by a child process paced at each rate, so the process CPU ÷ triggers is detect plus the
bus layer and nats-py, and `--profile` (cProfile on process time, the top 45 by own time;
`--profile-out`: the whole profile for pstats) shows which part of it is the bus's. The machine's
load is printed beside each step: a step that falls behind (seconds of latency) says the
process did not get a core, not what detect costs; CPU per trigger is the figure to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mev_common import metrics
from mev_common.bus import Bus
from mev_common.messages import PendingTx
from mev_common.runtime import Runtime
from mev_common.subjects import mempool, stream_specs
from mev_ops.nats_server import start_embedded_nats

from bench import detect_profile
from bench.stats import quantile
from bench.swaps import pending_swaps

FEED = r"""
import asyncio, sys, time, nats
async def main(url, subject, rate, path):
    lines = open(path, "rb").read().split(b"\n")
    nc = await nats.connect(url)
    js = nc.jetstream()
    async def send(line):
        tx_hash, _, body = line.partition(b" ")
        h = tx_hash.decode()
        headers = {"Nats-Msg-Id": h, "Mev-Trace": h, "Mev-Seen-Ns": str(time.time_ns())}
        await js.publish(subject, body, headers=headers)
    started, i, n = time.perf_counter(), 0, len(lines)
    while i < n:
        due = min(n, int((time.perf_counter() - started) * rate) + 1)
        if due - i == 1:
            await send(lines[i])
        elif due > i:
            await asyncio.gather(*(send(x) for x in lines[i:due]))
        i = max(i, due)
        await asyncio.sleep(0.0005)
    print(n / (time.perf_counter() - started), flush=True)
    await nc.close()
asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
"""


class _Samples:
    """The pending-latency histogram child, also keeping each observation (ms)."""

    def __init__(self, child: Any) -> None:
        self.child = child
        self.ms: list[float] = []

    def observe(self, seconds: float) -> None:
        self.child.observe(seconds)
        self.ms.append(seconds * 1e3)


async def run(url: str, tmp: Path, args: argparse.Namespace) -> None:
    """A warm-up step, then every rate `args.runs` times, each printed as it ends."""
    rates = [float(r) for r in args.rates.split(",")]
    seconds, runs, profile_rate = args.seconds, args.runs, args.profile
    found, deployment, _ = detect_profile.detector()
    settings = found.rt.settings
    chain = settings.chain.chain_id
    bus = await Bus.connect(url, "detect-bus-cpu", attempts=3)
    await bus.ensure_streams(stream_specs(settings))
    found.rt = rt = Runtime("detect", settings, bus, "bench")
    samples = _Samples(metrics.DETECTION_LATENCY.labels(trigger="pending"))
    found.latency["pending"] = samples  # type: ignore[assignment]
    concurrency = args.concurrency or settings.performance.detect_concurrency
    consumer = rt.consumer("detect", PendingTx, found.on_pending, concurrency, batched=True)
    stop = asyncio.Event()
    loop = asyncio.create_task(consumer.run(stop))
    total = 200 + int(sum(rates) * seconds) * runs
    payloads = iter(pending_swaps(deployment, total, seed=8))
    steps = [(200.0, 200)] + [(r, int(r * seconds)) for _ in range(runs) for r in rates]
    for k, (rate, n) in enumerate(steps):
        feed = tmp / f"feed{k}"
        feed.write_bytes(b"\n".join(h.encode() + b" " + p for h, p in
                                    (next(payloads) for _ in range(n))))  # fmt: skip
        samples.ms.clear()
        done0, cpu0 = consumer.processed, time.process_time()
        profiler = cProfile.Profile(time.process_time) if profile_rate == rate and k else None
        if profiler:
            profiler.enable()
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FEED, url, mempool(chain), str(rate), str(feed),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + seconds + 30
        while consumer.processed - done0 < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        cpu = time.process_time() - cpu0
        if profiler:
            profiler.disable()
        sent = float((await child.communicate())[0] or 0)
        if not k:
            continue  # warm-up
        ms = samples.ms
        print(
            f"{rate:,.0f}/s (sent {sent:,.0f}/s): CPU {cpu / n * 1e6:.0f} µs/trigger; "
            f"p50 {quantile(ms, 0.5):.2f} / p95 {quantile(ms, 0.95):.2f} ms (n={len(ms)}); "
            f"processed {consumer.processed - done0}/{n}; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(45)
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
    stop.set()
    await loop
    await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2000,3000")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", type=float, default=None, help="cProfile this rate's step")
    parser.add_argument("--profile-out", default=None, help="write that profile here (pstats)")
    parser.add_argument("--concurrency", type=int, default=None, help="detect_concurrency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="detect-bus-cpu-") as tmp:
        server = start_embedded_nats(store_dir=Path(tmp) / "nats")
        try:
            asyncio.run(run(server.url, Path(tmp), args))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
