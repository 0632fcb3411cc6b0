"""`python -m bench.detect_replicas [--rates 1000,2000,3000] [--runs 2] [--step-s 2]
[--v3-share 0.35]`: one detect vs 2 detect replicas sharing the mempool (services/detect/
peers.py), side by side on one devnet stack (one anvil, one nats-server, one ingest), the two
set-ups alternating run by run so both meet the same machine load.

Each rate step is scenario 2's (bench/scenarios/throughput.py): bench/swaps.py's real backrun
candidates (`--v3-share` of them SwapRouter swaps: the devnet flow's mix by default) published
as ingest does, exact Mev-Seen-Ns → published samples from every replica, triggers in / with
an opportunity / opportunities out / withdrawn / crowded, detect's process CPU per trigger (all
replicas), and the load average beside each step. nats-server, this feed and every detect
process share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import yaml
from mev_common.bus import Bus

from bench.scenarios.throughput import Step, _detect_step, _step_line
from bench.stack import Stack, devnet_stack
from bench.swaps import V3_SHARE, pending_swaps

WARM = 200


def _start_detect(stack: Stack, replicas: int) -> None:
    cfg = yaml.safe_load(stack.config.read_text())
    cfg["services"]["detect"]["replicas"] = replicas
    stack.config.write_text(yaml.safe_dump(cfg))
    stack.start("detect", replicas=replicas)
    stack.rpc("anvil_mine", ["0x1"])  # a head for every replica to apply pending swaps on


def _stop_detect(stack: Stack, replicas: int) -> None:
    for k in range(1, replicas + 1):
        stack.services.pop("detect" if k == 1 else f"detect#{k}").stop()


async def measure(
    rates: list[float], runs: int, step_s: float, v3_share: float = V3_SHARE
) -> list[tuple[int, Step, float]]:
    """(replicas, step, 1-minute load average at its end) for every step, in the order run."""
    sizes = [int(r * step_s) for r in rates]
    out: list[tuple[int, Step, float]] = []
    with devnet_stack() as stack:
        stack.start("ingest")
        total = 2 * runs * (WARM + sum(sizes))
        payloads = pending_swaps(stack.deployment, total, seed=41, v3_share=v3_share)
        cursor = 0
        bus = await Bus.connect(stack.nats.url, "bench-replicas-feed", attempts=3)
        try:
            for run in range(runs):
                for replicas in (1, 2) if run % 2 == 0 else (2, 1):
                    _start_detect(stack, replicas)
                    await asyncio.sleep(1.5)
                    warm = payloads[cursor : cursor + WARM]
                    cursor += WARM
                    await _detect_step(stack, bus, warm, 200.0, replicas)  # first use, untimed
                    for rate, n in zip(rates, sizes, strict=True):
                        batch = payloads[cursor : cursor + n]
                        cursor += n
                        step = await _detect_step(stack, bus, batch, rate, replicas)
                        load = os.getloadavg()[0]
                        out.append((replicas, step, load))
                        print(
                            f"  run {run + 1} detect x{replicas} {rate:,.0f}/s: "
                            f"{_step_line(step)}; load {load:.1f}",
                            flush=True,
                        )
                    _stop_detect(stack, replicas)
        finally:
            await bus.close()
    return out


def table(steps: list[tuple[int, Step, float]]) -> str:
    lines = [
        "| replicas | offered | sent | seen → opportunity p50 / p95 (n) | sustained | CPU/trigger"
        " | triggers / with opp. / out / withdrawn / crowded | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for replicas, s, load in sorted(steps, key=lambda x: (x[1].rate, x[0])):
        st = s.stats
        lat = "none" if st is None else f"{st.p50:.2f} / {st.p95:.2f} ms (n={st.count:,})"
        lines.append(
            f"| {replicas} | {s.rate:,.0f}/s | {s.achieved:,.0f}/s | {lat} | "
            f"{'yes' if s.sustained else 'no'} | {s.cpu_us:.0f} µs | {s.triggers:,} / "
            f"{s.with_opportunity:,} / {s.opportunities:,} / {s.withdrawn:,} / {s.crowded:,} | "
            f"{load:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2000,3000")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--step-s", type=float, default=2.0)
    parser.add_argument("--v3-share", type=float, default=V3_SHARE)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(table(asyncio.run(measure(rates, args.runs, args.step_s, args.v3_share))))


if __name__ == "__main__":
    main()
