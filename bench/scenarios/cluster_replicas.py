"""What R3 costs: one JetStream hop (Bus.publish -> PullConsumer) on a single server with R1
streams and on a local three-node cluster with R3 streams, side by side.

Why: an R3 publish is acked only once a quorum (2 of 3) has stored it, a network round trip
between servers on top of the single server's write. Both sides run here, interleaved, on the
same host, so the difference is the replication, not the machine (on one host the "network"
is loopback: across real hosts add their round trip). Observation counts are printed beside
the percentiles: a p95 of a few hundred samples is an estimate, not a constant.
"""

from __future__ import annotations

import asyncio

from mev_common.bus import Bus
from mev_common.subjects import StreamSpec
from mev_ops.nats_cluster import NatsCluster
from mev_ops.nats_server import start_embedded_nats

from bench.results import Row, ScenarioResult
from bench.samples import opportunity
from bench.scenarios.bus_floor import STREAM, _latency_run
from bench.stats import RunStats, ratio, run_stats, summarize

KEY = "cluster_replicas"
TITLE = "R1 vs R3: publish→consume on one server and on a 3-node cluster"
RATE = 200.0  # msg/s: the pipeline's opportunity rate with headroom, not a saturation test


async def _buses(urls: list[str], replicas: int, tag: str) -> tuple[Bus, Bus]:
    pub = await Bus.connect(urls, f"bench-{tag}-pub", attempts=3)
    sub = await Bus.connect(urls, f"bench-{tag}-sub", attempts=3)
    spec = StreamSpec(STREAM, ("bench.>",), max_age_s=600, replicas=replicas)
    await pub.ensure_streams([spec])
    return pub, sub


async def _measure(tiny: bool) -> ScenarioResult:
    runs, n = (2, 40) if tiny else (5, 600)
    result = ScenarioResult(KEY, TITLE)
    single = start_embedded_nats()
    cluster = NatsCluster().start()
    buses: list[Bus] = []
    try:
        sides: dict[str, tuple[Bus, Bus]] = {
            "R1": await _buses([single.url], 1, "r1"),
            "R3": await _buses(cluster.urls, 3, "r3"),
        }
        buses = [b for pair in sides.values() for b in pair]
        stats: dict[str, list[RunStats]] = {"R1": [], "R3": []}
        message = opportunity()
        for _ in range(runs):
            for side, (pub, sub) in sides.items():  # interleaved: drift hits both alike
                samples = await _latency_run(pub, sub, "ours", message, n, RATE)
                stats[side].append(run_stats(samples))
                result.samples.setdefault(f"{side} hop", []).extend(samples)
        r1, r3 = summarize(stats["R1"]), summarize(stats["R3"])
        counts = {side: sum(s.count for s in runs_) for side, runs_ in stats.items()}
        result.rows.append(
            Row(
                f"Opportunity publish→consume at {RATE:,.0f} msg/s, R3 cluster",
                "ms",
                r3,
                "R1 single server",
                r1,
                ratio(r3.p95, r1.p95),
                "R3/R1 p95",
                f"{counts['R3']} observations R3, {counts['R1']} R1 ({runs} runs of {n})",
            )
        )
        result.details = {"observations": counts}
        for side in ("R1", "R3"):
            s = summarize(stats[side])
            print(
                f"  {side}: p50 {s.p50:.2f} ms, p95 {s.p95:.2f} ms "
                f"over {counts[side]} observations",
                flush=True,
            )
    finally:
        for bus in buses:
            await bus.close()
        single.cleanup()
        cluster.cleanup()
    return result


def run(tiny: bool = False) -> ScenarioResult:
    return asyncio.run(_measure(tiny))
