"""simulate's code at a base commit against the work tree's, on the same plain backruns, in one
process: CPU and wall per `Simulator.simulate` call, and the EVM transactions each runs.

`python -m bench.simulate_ab [--base REV] [--rounds N] [--cycles K]`: extracts services/simulate
at REV (default main) with `git archive` as the package `services_base.simulate`, starts one
manual-mining devnet, and gives each side its own warm EVM forked at the same head with every
pool prefetched. Each round, for one of six victims (WETH -> USDC swaps on DEX A, 20-45 WETH),
each side traces the victim as the service does (prefetch_victim, not timed) and simulates K
cycles behind it (the best input and fractions of it), the sides in alternating order. It fails
if any bundle's gas or profit differs between the sides: a speed-up must not cost a wei. Why not
a bench scenario: the base side needs a second copy of the simulate package.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stats import exact

# the devnet world of simulate's integration tests (imported by name: mypy checks bench, not tests)
world = importlib.import_module("tests.support.stacked_world")
submit_world = importlib.import_module("tests.support.submit_world")
warm_simulator = importlib.import_module("tests.integration.test_simulate_v3").warm_simulator
CountingEvm = importlib.import_module("tests.integration.test_victim_effects").CountingEvm
GWEI, WETH = submit_world.GWEI, submit_world.WETH

REPO = Path(__file__).resolve().parent.parent


def extract_base(rev: str, into: Path) -> None:
    """services/simulate at `rev`, importable as services_base.simulate."""
    raw = subprocess.run(["git", "archive", rev, "services/simulate"], cwd=REPO,
                         check=True, capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(into, filter="data")
    package = into / "services_base"
    (into / "services").rename(package)
    (package / "__init__.py").touch()
    for path in package.rglob("*.py"):
        path.write_text(path.read_text().replace("services.simulate", "services_base.simulate"))
    sys.path.insert(0, str(into))


def side(devnet: Any, base: bool, tmp: Path) -> tuple[Any, Any, Any, Any]:
    """(simulator, warm EVM, prefetch module, its counting EVM) of one side."""
    name = "services_base" if base else "services"
    sim_mod = importlib.import_module(f"{name}.simulate.simulator")
    warm_mod = importlib.import_module(f"{name}.simulate.warm")
    quarantine = importlib.import_module(f"{name}.simulate.quarantine")
    settings, head, _, ours = warm_simulator(devnet, tmp, flash=True)
    warm = warm_mod.WarmEvm(devnet.node.rpc_url, 31337, devnet.executor.address, 1.0)
    warm.fork(head)
    simulator = sim_mod.Simulator(settings, warm, ours.bot, ours.weth,
                                  quarantine.Quarantine(3, 60, 60))  # fmt: skip
    return simulator, warm, importlib.import_module(f"{name}.simulate.prefetch"), warm.evm


async def run(rounds: int, cycles: int, tmp: Path) -> None:
    gen = submit_world.manual_mining_devnet(tmp / "devnet")
    devnet = next(gen)
    try:
        sides = {"base": side(devnet, True, tmp / "a"), "new": side(devnet, False, tmp / "b")}

        async def call(method: str, params: list[Any]) -> Any:
            return devnet.rpc(method, params)

        counters = {}
        for key, (simulator, warm, prefetch, evm) in sides.items():
            for p in devnet.deployment["pairs"]:
                probe = prefetch.PoolProbe(p["address"], p["token0"], p["token1"])
                assert await prefetch.prefetch_pool(call, warm, probe, simulator.bot)
            warm.evm = counters[key] = CountingEvm(evm)
        head = devnet.w3.eth.get_block("latest")
        base_fee = int(head["baseFeePerGas"])
        sizes = [(20 + 5 * k) * WETH for k in range(6)]
        victims = [
            world.victim(devnet, 2 + k, size, 3 * GWEI, base_fee)[1] for k, size in enumerate(sizes)
        ]
        cpu: dict[str, list[float]] = {k: [] for k in sides}
        wall: dict[str, list[float]] = {k: [] for k in sides}
        txs: dict[str, list[int]] = {k: [] for k in sides}
        out: dict[str, list[tuple[int, int]]] = {k: [] for k in sides}
        for i in range(rounds):
            v, size = victims[i % 6], sizes[i % 6]
            state = world.reserves(devnet)
            world.swap(state, "A", True, size)
            best = world.best_amount(state)
            for key in ("base", "new") if i % 2 == 0 else ("new", "base"):
                simulator, warm, prefetch, _ = sides[key]
                warm.touched.clear()  # traced afresh each round (effects, if any, too)
                getattr(warm, "effects", warm.touched).clear()
                assert await prefetch.prefetch_victim(call, warm, simulator_tx(simulator, v))
                for j in range(cycles):
                    amount = best * (cycles - j) // cycles
                    opp = world.opportunity(devnet, f"{key}-{i}-{j}", head, amount,
                                      world.cycle_profit(state, amount), v)  # fmt: skip
                    before = counters[key].txs
                    c0, w0 = time.process_time_ns(), time.perf_counter_ns()
                    verdict = simulator.simulate(opp, 0.0)
                    w1, c1 = time.perf_counter_ns(), time.process_time_ns()
                    bundle = verdict.bundle
                    assert bundle is not None, verdict
                    cpu[key].append((c1 - c0) / 1e6)
                    wall[key].append((w1 - w0) / 1e6)
                    txs[key].append(counters[key].txs - before)
                    out[key].append((bundle.simulated_gas_used, bundle.simulated_profit))
        if out["base"] != out["new"]:
            raise SystemExit("the sides' bundles differ in gas or profit")
        for key in sides:
            c, w = exact(cpu[key]), exact(wall[key])
            print(f"{key}: simulate() CPU p50 {c.p50:.3f} / p95 {c.p95:.3f} ms, wall p50 "
                  f"{w.p50:.3f} / p95 {w.p95:.3f} ms (n={c.samples}); EVM txs a backrun "
                  f"{sorted(set(txs[key]))}")  # fmt: skip
        print(f"gas and profit identical on all {len(out['new'])} pairs")
    finally:
        next(gen, None)


def simulator_tx(simulator: Any, v: Any) -> Any:
    """The victim's TxSpec as that side's simulator module builds it."""
    return sys.modules[type(simulator).__module__].victim_tx(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="simulate-ab-") as tmp:
        extract_base(args.base, Path(tmp) / "code")
        asyncio.run(run(args.rounds, args.cycles, Path(tmp)))


if __name__ == "__main__":
    main()
