"""`python -m bench [--tiny] [--only KEY ...]`: run the scenarios in order, write the results.

A scenario that fails or cannot run yet reports "not available: <why>" in the table rather than
stopping the others; the exit code is 0 unless no scenario produced a number.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import figure, report
from bench.results import ScenarioResult

# Order of the issue: 1 bus floor, 2 throughput, 3 tick-to-trade, 4 simulation, 5 math, 6 capture;
# then 7, R1 vs R3 streams.
SCENARIOS = (
    "bench.scenarios.bus_floor",
    "bench.scenarios.throughput",
    "bench.scenarios.tick_to_trade",
    "bench.scenarios.simulation",
    "bench.scenarios.amm_peer",
    "bench.scenarios.amm_v3_peer",  # issue 13: V3 math and mixed V2/V3 sizing vs degenbot
    "bench.scenarios.profit_capture",
    "bench.scenarios.cluster_replicas",  # what R3 costs (docs/SCALING.md)
    "bench.scenarios.rival",  # issue 12: our win rate against a rival at 50, 10 and 2 ms
)


def run_one(module_name: str, tiny: bool) -> ScenarioResult:
    module = importlib.import_module(module_name)
    started = time.perf_counter()
    try:
        result: ScenarioResult = module.run(tiny)
    except Exception as exc:  # one broken scenario must not hide the others' numbers
        traceback.print_exc()
        result = ScenarioResult.unavailable(module.KEY, module.TITLE, f"failed: {exc!r}"[:200])
    result.seconds = time.perf_counter() - started
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="smallest sizes (smoke run)")
    parser.add_argument("--only", nargs="*", default=None, help="scenario keys or module names")
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)
    chosen = [
        m
        for m in SCENARIOS
        if not args.only or any(o in m.rsplit(".", 1)[-1] or o == m for o in args.only)
    ]
    started = datetime.now(UTC)
    size = "tiny" if args.tiny else "full"
    results = []
    for number, module_name in enumerate(chosen, start=1):
        name = module_name.rsplit(".", 1)[-1]
        print(f"[{number}/{len(chosen)}] {name} ...", flush=True)
        result = run_one(module_name, args.tiny)
        state = "ok" if result.available else f"not available: {result.reason}"
        print(f"[{number}/{len(chosen)}] {name}: {state} ({result.seconds:.1f} s)", flush=True)
        results.append(result)
    out = report.RESULTS_DIR if args.out is None else Path(args.out)
    json_path, md_path = report.write(results, started, size, out)
    png_path = figure.draw(results, out / "latest.png", f"mev-pipeline bench {started:%Y-%m-%d}")
    print()
    print(md_path.read_text())
    print(f"wrote {json_path}, {md_path}, {png_path}")
    return 0 if any(r.available and r.rows for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
