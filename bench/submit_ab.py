"""Submit A/B on the backrun flow: the same pending-swap run (bench/pending_sim.py) with submit's
code taken from two git revisions, alternating A, B, A, B in one process. Everything else
(ingest, detect, simulate, the devnet) runs from this checkout, so only submit differs.

Each revision's `services/` and `libs/common/mev_common` are exported (`git archive`) to a temp
directory that a small launcher puts first on submit's sys.path. Prints, per side, seen ->
signed tx (pending triggers) and submit's hops as exact nearest-rank p50/p95 with n, pooled
over that side's runs, plus seen -> simulated bundle (upstream of submit: the same code on
both sides, a check that the load was alike).

    .venv/bin/python -m bench.submit_ab --a 91dc2dd --b HEAD --runs 4 --swaps 200
"""

from __future__ import annotations

import argparse
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from mev_common.metrics import SAMPLES_ENV

from bench.pending_sim import (
    HOP_METRIC,
    SIGNED,
    SIMULATED,
    Logged,
    drive_swaps,
    figure,
)
from bench.stack import devnet_stack, merge
from tests.support.stack import REPO, ServiceProcess

LAUNCHER = '''"""Run the submit of an exported revision (bench/submit_ab.py)."""
import runpy
import sys

sys.path[:0] = [{src!r}, {common!r}]
import mev_common, services.submit  # noqa: E401

assert mev_common.__file__.startswith({src!r}) and services.submit.__file__.startswith({src!r})
runpy.run_module("services.submit", run_name="__main__", alter_sys=True)
'''


def export(rev: str, into: Path) -> str:
    """`rev`'s submit sources under `into`; returns the launcher module's name."""
    tar = subprocess.run(
        ["git", "archive", rev, "services", "libs/common/mev_common"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout  # fmt: skip
    src = into / "src"
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(src, filter="data")
    name = f"submit_ab_{into.name.replace('-', '_')}"
    text = LAUNCHER.format(src=str(src), common=str(src / "libs" / "common"))
    (into / f"{name}.py").write_text(text)
    return name


def one_run(module: str, path: Path, swaps: int, rate: float, seed: int) -> Logged:
    with devnet_stack(block_time=1) as stack:
        stack.start("ingest", "detect", "simulate")
        stack.samples_dir.mkdir(exist_ok=True)
        env = {SAMPLES_ENV: str(stack.samples_dir), "PYTHONPATH": str(path)}
        proc = ServiceProcess("submit", stack.config, stack.base / "submit.log", env=env,
                              module=module)  # fmt: skip
        stack.services["submit"] = proc.start()
        proc.wait_health(200, timeout_s=60)
        return drive_swaps(stack, swaps, rate, seed)


def report(name: str, logged: Logged) -> None:
    print(f"{name}:", flush=True)
    print(
        f"  seen -> bundle (pending)  {figure(logged.get(('simulate', SIMULATED, 'pending'), []))}"
    )
    print(f"  seen -> signed (pending)  {figure(logged.get(('submit', SIGNED, 'pending'), []))}")
    print(f"  seen -> signed (block)    {figure(logged.get(('submit', SIGNED, 'block'), []))}")
    for (service, metric, label), samples in sorted(logged.items()):
        if service == "submit" and metric == HOP_METRIC:
            print(f"  {label:14} {figure(samples)} (block and pending bundles)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", default="main")
    parser.add_argument("--b", default="HEAD")
    parser.add_argument("--runs", type=int, default=4, help="total, alternating A and B")
    parser.add_argument("--swaps", type=int, default=200)
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="submit-ab-") as tmp:
        sides = {}
        for side, rev in (("A", args.a), ("B", args.b)):
            into = Path(tmp) / f"side-{side.lower()}"
            into.mkdir()
            sides[side] = (rev, export(rev, into), into)
        pooled: dict[str, Logged] = {"A": {}, "B": {}}
        for k in range(args.runs):
            side = "AB"[k % 2]
            rev, module, path = sides[side]
            logged = one_run(module, path, args.swaps, args.rate, args.seed + k // 2)
            report(f"run {k + 1}: {side} ({rev})", logged)
            merge(pooled[side], logged)
        for side in "AB":
            report(f"pooled {side} ({sides[side][0]})", pooled[side])


if __name__ == "__main__":
    main()
