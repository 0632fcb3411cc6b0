"""What a refork costs the routes after it: lazy RPC reads on the hot path, main's rule against
the prefetch queue's (services/simulate/prefetch_queue.py), alternating in one process.

`python -m bench.refork_ab [--rounds N]`: one manual-mining devnet; each side a warm EVM forked
through its own counting JSON-RPC proxy to the node (every lazy read pyrevm makes is one call
through it), every pool the service prefetches at start (the deployment's V2 pairs, then the V3
factories' pools over its tokens) prefetched as the service's prefetcher does. Each round both
sides refork (a reorg at the head), run their prefetcher until nothing is queued (off the hot
path, not timed), then simulate the V3 routes of tests/integration/test_simulate_v3.py (v3-v3,
v2-v3-v3): the proxy's calls, CPU and wall of each route's first simulate() after the refork.
main's rule is its service.py's `queue_prefetch`: a pool whose tokens `pair_tokens` knows is
never queued, and a refork keeps `pair_tokens` (the simulator is the same code on both sides:
only the queue differs). It fails if the sides' bundles differ by a wei.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mev_common.chain.contracts import read_deployment

from bench.stats import exact
from services.simulate.prefetch import PoolProbe, existing, prefetch_pool, v3_candidates
from services.simulate.prefetch_queue import PrefetchQueue
from services.simulate.quarantine import Quarantine
from services.simulate.simulator import Simulator
from services.simulate.warm import WarmEvm

submit_world = importlib.import_module("tests.support.submit_world")
v3_tests = importlib.import_module("tests.integration.test_simulate_v3")
CHAIN_ID = 31337


COUNT_METHOD = "proxy_calls"  # asks the proxy its count (not forwarded, not counted)


def serve_proxy(upstream: str) -> None:
    """A JSON-RPC proxy to `upstream` counting the calls through it (a batch counts each); its
    own process: pyrevm holds the GIL through a lazy read, so a proxy thread would deadlock."""
    calls = 0

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            parsed = json.loads(body)
            if isinstance(parsed, dict) and parsed.get("method") == COUNT_METHOD:
                out = json.dumps({"jsonrpc": "2.0", "id": parsed["id"], "result": calls}).encode()
            else:
                calls += len(parsed) if isinstance(parsed, list) else 1
                request = urllib.request.Request(
                    upstream, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as reply:
                    out = reply.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.refork_ab", "--proxy", upstream],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    @property
    def calls(self) -> int:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": COUNT_METHOD, "params": []})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(json.loads(reply.read())["result"])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class MainQueue:
    """main's service.py queue_prefetch: skips a pool in flight or whose tokens are known."""

    def __init__(self, warm: WarmEvm) -> None:
        self.warm, self.in_flight, self.queue = warm, set[str](), list[PoolProbe]()

    def want(self, probe: PoolProbe) -> None:
        if probe.pair in self.in_flight or probe.pair in self.warm.pair_tokens:
            return
        self.in_flight.add(probe.pair)
        self.queue.append(probe)

    def take(self) -> list[PoolProbe]:
        out, self.queue = self.queue, []
        return out


class NewQueue(PrefetchQueue):
    def take(self) -> list[PoolProbe]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


async def run(rounds: int, tmp: Path) -> None:
    gen = submit_world.manual_mining_devnet(tmp / "devnet")
    devnet = next(gen)
    proxies: list[CountingProxy] = []
    try:
        settings, head, _, fresh = v3_tests.warm_simulator(devnet, tmp, True)
        contracts = read_deployment(devnet.deployment_path, CHAIN_ID)

        async def call(method: str, params: list[Any]) -> Any:
            return devnet.rpc(method, params)

        async def batch(calls: list[tuple[str, list[Any]]]) -> list[Any]:
            return [devnet.rpc(m, p) for m, p in calls]

        start = [PoolProbe(p.address, p.token0, p.token1) for p in contracts.pairs]
        start += await existing(batch, v3_candidates(contracts.v3_dexes, contracts.tokens))
        sides: dict[str, tuple[WarmEvm, Any, Simulator, CountingProxy]] = {}
        for key, make in (("main", MainQueue), ("new", NewQueue)):
            proxy = CountingProxy(devnet.node.rpc_url)
            proxies.append(proxy)
            warm = WarmEvm(proxy.url, CHAIN_ID, devnet.executor.address, 1.0)
            queue = make(warm)
            if isinstance(queue, PrefetchQueue):
                warm.on_fork = queue.forked
            warm.fork(head)
            for probe in start:
                queue.want(probe)
            sides[key] = (warm, queue, Simulator(settings, warm, fresh.bot, fresh.weth,
                                                 Quarantine(3, 60, 60)), proxy)  # fmt: skip

        async def prefetcher(warm: WarmEvm, queue: Any, done: Callable[[str], None]) -> None:
            for probe in queue.take():
                assert await prefetch_pool(call, warm, probe, fresh.bot)
                done(probe.pair)

        for warm, queue, _, _ in sides.values():
            done = queue.done if isinstance(queue, PrefetchQueue) else queue.in_flight.discard
            await prefetcher(warm, queue, done)
        routes = {  # opportunity() runs its own event loop
            name: await asyncio.to_thread(v3_tests.opportunity, devnet, legs, amount, head)
            for name, (legs, amount) in v3_tests.ROUTES.items()
        }
        reads: dict[str, list[int]] = {k: [] for k in sides}
        cpu: dict[str, list[float]] = {k: [] for k in sides}
        wall: dict[str, list[float]] = {k: [] for k in sides}
        out: dict[str, list[tuple[int, int]]] = {k: [] for k in sides}
        refetch: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
        for i in range(rounds):
            for key in ("main", "new") if i % 2 == 0 else ("new", "main"):
                warm, queue, simulator, proxy = sides[key]
                warm.advance(head.model_copy(update={"reorg": True}))
                done = queue.done if isinstance(queue, PrefetchQueue) else queue.in_flight.discard
                c0, w0 = time.process_time_ns(), time.perf_counter_ns()
                await prefetcher(warm, queue, done)  # off the hot path (the node's traces)
                refetch[key].append(
                    ((time.process_time_ns() - c0) / 1e6, (time.perf_counter_ns() - w0) / 1e6)
                )
                for opp in routes.values():
                    for hop in opp.hops:  # what simulate_one does before the run
                        queue.want(PoolProbe.of(hop))
                    calls = proxy.calls
                    c0, w0 = time.process_time_ns(), time.perf_counter_ns()
                    verdict = simulator.simulate(opp, time.monotonic())
                    w1, c1 = time.perf_counter_ns(), time.process_time_ns()
                    assert verdict.bundle is not None, verdict
                    reads[key].append(proxy.calls - calls)
                    cpu[key].append((c1 - c0) / 1e6)
                    wall[key].append((w1 - w0) / 1e6)
                    out[key].append((verdict.bundle.simulated_gas_used,
                                     verdict.bundle.simulated_profit))  # fmt: skip
                assert queue.take() == []  # both: every route pool is known (main) or held
        if out["main"] != out["new"]:
            raise SystemExit("the sides' bundles differ in gas or profit")
        for key in sides:
            c, w, r = exact(cpu[key]), exact(wall[key]), exact([float(x) for x in reads[key]])
            print(f"{key}: first simulate() of a V3 route after a refork: RPC reads p50 "
                  f"{r.p50:.0f} / p95 {r.p95:.0f}, CPU p50 {c.p50:.2f} / p95 {c.p95:.2f} ms, "
                  f"wall p50 {w.p50:.2f} / p95 {w.p95:.2f} ms (n={c.samples}); "
                  f"prefetching after the refork (this process's CPU, node included in wall) "
                  f"{exact([c for c, _ in refetch[key]]).p50:.0f} ms CPU, "
                  f"{exact([w for _, w in refetch[key]]).p50:.0f} ms wall p50")  # fmt: skip
        print(f"gas and profit identical on all {len(out['new'])} pairs; pools prefetched at "
              f"start {len(start)}")  # fmt: skip
    finally:
        for proxy in proxies:
            proxy.close()
        next(gen, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--proxy", help="(internal) serve the counting proxy to this URL")
    args = parser.parse_args()
    if args.proxy:
        serve_proxy(args.proxy)
        return
    with tempfile.TemporaryDirectory(prefix="refork-ab-") as tmp:
        asyncio.run(run(args.rounds, Path(tmp)))


if __name__ == "__main__":
    main()
