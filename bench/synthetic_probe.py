"""`python -m bench.synthetic_probe [--rates 20 50] [--triggers 200]`: simulate's rate on
synthetic backruns, one pipeline, one rate after the other.

Scenario 3's synthetic load (bench/swaps.py: real backrun candidates, each from a fresh funded
sender) at a few low rates, to see where simulate stops keeping up: per rate, the triggers
sent, detect's opportunities, simulate's results by reason (published, stale_timeout, ...),
and seen → simulated bundle / signed tx as exact samples with their counts. Each rate has
senders of its own (a new seed), so every victim is an account simulate has not seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from bench.load_outcomes import pipeline_counts as _counts
from bench.scenarios.tick_to_trade import STAGES, _stage, _synthetic
from bench.stack import Stack, devnet_stack, wait_until
from bench.stats import exact
from bench.swaps import fund_senders, pending_swaps

RESULTS = "mev_bot_simulations_total"


def _results(stack: Stack) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in stack.metrics("simulate").get(RESULTS, []):
        out[labels.get("result", "?")] = out.get(labels.get("result", "?"), 0.0) + value
    return out


def probe(stack: Stack, rate: float, n: int, seed: int) -> dict[str, object]:
    fund_senders(stack.node.rpc_url, seed, n, 10**21)
    time.sleep(1.5)  # the balances are in a block before the swaps are simulated
    payloads = pending_swaps(stack.deployment, n, seed=seed, eth_in=True)
    stack.latencies()
    before, results_before = _counts(stack), _results(stack)
    asyncio.run(_synthetic(stack, payloads, rate))
    wait_until(lambda: _counts(stack)["processed"] - before["processed"] >= n, 60.0, 0.5)
    time.sleep(3.0)
    after, results_after = _counts(stack), _results(stack)
    logged = stack.latencies()
    results = {
        k: int(v - results_before.get(k, 0.0))
        for k, v in sorted(results_after.items())
        if v - results_before.get(k, 0.0) > 0
    }
    out: dict[str, object] = {
        "rate": rate,
        "triggers": n,
        "opportunities": int(after["opportunities"] - before["opportunities"]),
        "bundles": int(after["bundles"] - before["bundles"]),
        "simulate": results,
    }
    for label, service, name, value, _ in STAGES[1:]:
        samples = _stage(logged, service, name, value)
        ours = exact(samples) if samples else None
        out[label] = f"{ours.p50:.2f} / {ours.p95:.2f} ms (n={ours.samples})" if ours else "none"
    with urllib.request.urlopen(stack.services["simulate"].health_url(), timeout=5) as resp:
        out["reference"] = json.loads(resp.read())["checks"]["reference"]["detail"]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synthetic_probe", description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 50.0])
    parser.add_argument("--triggers", type=int, default=200, help="triggers per rate")
    parser.add_argument(
        "--no-reference", action="store_true", help="simulate.reference_sample_rate 0 (no halt)"
    )
    args = parser.parse_args(argv)
    sections: dict[str, Any] = (
        {"simulate": {"reference_sample_rate": 0.0}} if args.no_reference else {}
    )
    with devnet_stack(block_time=1, **sections) as stack:
        stack.start("ingest", "detect", "simulate", "submit")
        for k, rate in enumerate(args.rates):
            print(probe(stack, rate, args.triggers, seed=70 + k), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
