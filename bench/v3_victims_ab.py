"""What bench's V3 victims change, side by side in one run: scenario 2's detect (in process and
on the bus) and scenario 3's synthetic loads, fed V2-only victims and the devnet flow's V2:V3
mix (bench/swaps.py) alternately, so both sides meet the same machine load.

Why: until wave 15 bench's synthetic victims were Router02 swaps only, while `make run`'s flow
sends 35 % of its swaps to a SwapRouter, whose victims cost detect more (their cycles run
through V3 pools): bench under-stated detect's cost. No two batches share a sender or a tx
hash (no victim waits behind another of its sender's, none is dropped as a duplicate).

    python -m bench.v3_victims_ab [--parts profile,bus,pipeline] [--rounds 2] [--rates 100,250]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from mev_common.bus import Bus

from bench import detect_profile
from bench.results import ScenarioResult
from bench.scenarios import throughput, tick_to_trade
from bench.stack import devnet_stack, wait_heads
from bench.stats import quantile
from bench.swaps import V3_SHARE, pending_swaps

MIXES = (("V2 only", 0.0), (f"V2:V3 flow mix ({V3_SHARE:.0%} V3)", V3_SHARE))


def _pct(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    p50, p95 = quantile(samples, 0.5), quantile(samples, 0.95)
    return f"p50 {p50:.2f} / p95 {p95:.2f} ms (n={len(samples)})"


def profile(rounds: int, n: int) -> list[dict[str, Any]]:
    """detect_profile.measure (scenario 2's first row) per mix, alternating."""
    out = []
    for r in range(rounds):
        for label, share in MIXES:
            got = detect_profile.measure(n, seed=8 + r, v3_share=share)
            got.pop("samples")
            got["mix"], got["round"] = label, r
            print(json.dumps(got), flush=True)
            out.append(got)
    return out


async def _bus(rounds: int, rates: list[float], step_s: float) -> list[dict[str, Any]]:
    """Scenario 2's detect steps (one detect, the real service on NATS) per rate and mix."""
    out: list[dict[str, Any]] = []
    with devnet_stack() as stack:
        stack.start("ingest")
        stack.start("detect")
        stack.rpc("anvil_mine", ["0x1"])
        await asyncio.to_thread(wait_heads, stack, stack.head())
        bus = await Bus.connect(stack.nats.url, "bench-v3-ab", attempts=3)
        try:
            # a seed per mix (a mix's V2 swaps replay the V2-only sequence's draws, tx hashes
            # included, which the stream would drop as duplicates), one index over the run:
            # each batch the next swaps, so senders are distinct and tips rise over the whole
            # run (a batch's swaps are never crowded by an earlier batch's)
            seeds, at = {share: 500 + k for k, (_, share) in enumerate(MIXES)}, 0
            for _, share in MIXES:  # first use of each kind, not timed
                warm = pending_swaps(stack.deployment, 200, seeds[share], v3_share=share, start=at)
                at += 200
                await throughput._detect_step(stack, bus, warm, 200.0)
            for r in range(rounds):
                for rate in rates:
                    for label, share in MIXES if r % 2 == 0 else MIXES[::-1]:
                        n = int(rate * step_s)
                        batch = pending_swaps(
                            stack.deployment, n, seeds[share], v3_share=share, start=at
                        )
                        at += n
                        step = await throughput._detect_step(stack, bus, batch, rate)
                        line = throughput._step_line(step)
                        print(f"  {label} {rate:,.0f}/s round {r}: {line}", flush=True)
                        out.append({"mix": label, "rate": rate, "samples": step.samples,
                                    "triggers": step.triggers, "hit": step.with_opportunity,
                                    "cpu_us": step.cpu_us})  # fmt: skip
        finally:
            await bus.close()
    for rate in rates:
        for label, _ in MIXES:
            steps = [s for s in out if s["rate"] == rate and s["mix"] == label]
            pooled = [x for s in steps for x in s["samples"]]
            cpu = sorted(s["cpu_us"] for s in steps)
            print(f"BUS {rate:,.0f}/s {label}: {_pct(pooled)}; triggers "
                  f"{sum(s['triggers'] for s in steps)}, with an opportunity "
                  f"{sum(s['hit'] for s in steps)}; CPU µs/trigger per step {cpu}")  # fmt: skip
    return out


def pipeline(rounds: int, loads: tuple[tuple[float, float], ...]) -> ScenarioResult:
    """Scenario 3's synthetic loads (the full pipeline) per mix, alternating in one stack."""
    result = ScenarioResult(tick_to_trade.KEY, tick_to_trade.TITLE)
    with devnet_stack(block_time=1) as stack:
        stack.start("ingest", "detect", "simulate", "submit")
        k = 0
        for r in range(rounds):
            for rate, seconds in loads:
                for label, share in MIXES if r % 2 == 0 else MIXES[::-1]:
                    k += 1
                    tick_to_trade._synthetic_load(
                        stack, rate, seconds, 700 + k, result, share, f", {label}, round {r}"
                    )
    for row in result.rows:
        if (s := row.ours) is not None:
            print(f"PIPE {row.metric}: p50 {s.p50:.2f} / p95 {s.p95:.2f} ms (n={s.samples})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="profile,bus,pipeline")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--rates", default="100,250,500", help="bus part: triggers/s")
    args = parser.parse_args()
    parts = args.parts.split(",")
    print(f"load {os.getloadavg()}", flush=True)
    if "profile" in parts:
        profile(args.rounds, args.n)
    if "bus" in parts:
        asyncio.run(_bus(args.rounds, [float(r) for r in args.rates.split(",")], 4.0))
    if "pipeline" in parts:
        pipeline(args.rounds, ((100.0, 10.0), (1_000.0, 3.0)))
    print(f"load {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
