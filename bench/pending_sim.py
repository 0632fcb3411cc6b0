"""Pending-swap (backrun) latency on the full pipeline, with enough samples to compare: real
signed user swaps sent to the devnet node one at a time at a fixed rate, each from a fresh
funded sender at nonce 0 with a rising tip (a real backrun candidate: nothing queued ahead of
it, nothing earlier outbidding it), through ingest's pending feed, detect, simulate and submit
as real processes (bench/stack.py). Prints seen -> simulated bundle and seen -> signed tx for
pending triggers and simulate's hops, as exact nearest-rank p50/p95 with n.

Seen is ingest's Mev-Seen-Ns (the full tx from the node's pending subscription), as on `make
run`. Runs are sequential stacks; alternate the settings to compare side by side, e.g.

    .venv/bin/python -m bench.pending_sim --swaps 300 --rate 3 --early 0,20,0,20

or two versions of simulate's code (a checkout's root, `.` for this one), the same swaps each:

    .venv/bin/python -m bench.pending_sim --simulate-code /tmp/base,.,/tmp/base,.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import time
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode as encode_abi
from eth_account import Account
from mev_ops.devnet.layout import TOKENS_BY_SYMBOL

from bench.stack import CHAIN_ID, Stack, devnet_stack, merge
from bench.stats import exact
from bench.swaps import GWEI, SWAP_EXACT_ETH, _paths

SIMULATED, SIGNED = "mev_bot_simulation_latency_seconds", "mev_bot_submission_latency_seconds"
HOP_METRIC = "mev_bot_hop_latency_seconds"
ETH_EACH = 10**21
Logged = dict[tuple[str, str, str], list[float]]


def signed_swaps(deployment: dict[str, Any], n: int, seed: int) -> list[tuple[str, str]]:
    """n (sender, raw tx): WETH-in router swaps ($3k-$50k), each from its own fresh key."""
    rng = random.Random(seed)
    tokens = deployment["tokens"]
    routers = [d["router"] for d in deployment["dexes"]]
    paths = [p for p in _paths() if p[0] == "WETH"]
    out = []
    for i in range(n):
        account = Account.from_key(hashlib.sha256(f"pending-sim:{seed}:{i}".encode()).digest())
        path = rng.choice(paths)
        wei = int(10 ** rng.uniform(3.5, 4.7) / TOKENS_BY_SYMBOL["WETH"].usd_price * 10**18)
        addresses = [tokens[s]["address"] for s in path]
        args = encode_abi(
            ["uint256", "address[]", "address", "uint256"], [0, addresses, account.address, 2**40]
        )
        tx = {
            "chainId": CHAIN_ID, "nonce": 0, "to": rng.choice(routers),
            "data": "0x" + (SWAP_EXACT_ETH + args).hex(), "value": wei, "gas": 450_000,
            "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI + i, "type": 2,
        }  # fmt: skip
        signed = account.sign_transaction(tx)
        out.append((account.address, "0x" + signed.raw_transaction.hex().removeprefix("0x")))
    return out


async def send_paced(url: str, raws: list[str], rate: float) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        started = time.perf_counter()
        for i, raw in enumerate(raws):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            body = {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
            reply = (await client.post(url, json=body)).json()
            if "error" in reply:
                print(f"  send {i}: {reply['error']}", flush=True)


def figure(samples: list[float]) -> str:
    if not samples:
        return "n=0"
    s = exact(samples)
    return f"p50 {s.p50:.2f} / p95 {s.p95:.2f} ms (n={s.samples})"


def code_env(root: str) -> dict[str, str]:
    """simulate's process imports `services` from `root` (not the working directory)."""
    if not root:
        return {}
    return {"PYTHONSAFEPATH": "1", "PYTHONPATH": str(Path(root).resolve())}


def simulate_cpu(stack: Stack) -> tuple[float, int]:
    """simulate's process CPU seconds and backrun simulations so far."""
    samples = stack.metrics("simulate")
    cpu = sum(v for _, v in samples.get("process_cpu_seconds_total", []))
    runs = samples.get("mev_bot_simulations_total", [])
    return cpu, int(sum(v for labels, v in runs if labels.get("strategy") == "backrun"))


def drive_swaps(stack: Stack, swaps: int, rate: float, seed: int) -> Logged:
    """Fund `swaps` fresh senders, send their swaps at `rate`/s to the running stack; the
    latencies logged from the first send until 3 s after the last."""
    txs = signed_swaps(stack.deployment, swaps, seed)
    calls = [
        {"jsonrpc": "2.0", "id": i, "method": "anvil_setBalance",
         "params": [sender, hex(ETH_EACH)]}
        for i, (sender, _) in enumerate(txs)
    ]  # fmt: skip
    httpx.post(stack.node.rpc_url, json=calls, timeout=60).raise_for_status()
    time.sleep(2.0)
    stack.latencies()  # from here on
    asyncio.run(send_paced(stack.node.rpc_url, [raw for _, raw in txs], rate))
    time.sleep(3.0)
    logged: Logged = {}
    merge(logged, stack.latencies())
    return logged


def one_run(swaps: int, rate: float, seed: int, simulate: dict[str, Any], code: str = "") -> Logged:
    with devnet_stack(block_time=1, simulate=simulate) as stack:
        stack.start("ingest", "detect")
        stack.start("simulate", env=code_env(code))
        stack.start("submit")
        print(f"  load average at start {os.getloadavg()[0]:.1f}", flush=True)
        cpu0, runs0 = simulate_cpu(stack)
        logged = drive_swaps(stack, swaps, rate, seed)
        cpu1, runs1 = simulate_cpu(stack)
        per = (cpu1 - cpu0) * 1e3 / max(1, runs1 - runs0)
        n = runs1 - runs0
        note = "all its work: blocks, traces, publishes"
        print(f"  simulate CPU {cpu1 - cpu0:.2f} s, {per:.2f} ms a backrun (n={n}; {note})")
        results = stack.metrics("simulate").get("mev_bot_simulations_total", [])
        counts: dict[str, int] = {}
        for labels, value in results:
            key = f"{labels.get('strategy', '')}:{labels.get('result', '')}"
            counts[key] = counts.get(key, 0) + int(value)
        print(f"  simulate results: {dict(sorted(counts.items()))}", flush=True)
        prefetches = stack.metrics("simulate").get("mev_bot_simulator_prefetches_total", [])
        victims = {k.get("result", ""): int(v) for k, v in prefetches if "victim" in str(k)}
        print(f"  victim traces: {dict(sorted(victims.items()))}", flush=True)
        health = httpx.get(stack.services["simulate"].health_url(), timeout=5).json()
        detail = health.get("checks", health).get("simulator", {}).get("detail", {})
        runs = {k: detail[k] for k in ("victim_runs", "victim_reused") if k in detail}
        print(f"  victim runs on the EVM: {runs or 'not counted (older code)'}", flush=True)
        for line in (stack.base / "simulate.log").read_text().splitlines():
            if "disagree" in line:
                print(f"  simulate: {line[:4000]}", flush=True)
        return logged


def report(name: str, logged: Logged) -> None:
    print(f"{name}:", flush=True)
    print(
        f"  seen -> bundle (pending)  {figure(logged.get(('simulate', SIMULATED, 'pending'), []))}"
    )
    print(f"  seen -> signed (pending)  {figure(logged.get(('submit', SIGNED, 'pending'), []))}")
    for (service, metric, label), samples in sorted(logged.items()):
        if metric != HOP_METRIC or "block" in label:
            continue
        if service == "simulate" and label.startswith("sim_"):
            zero = sum(1 for v in samples if v < 0.05)
            print(f"  {label:14} {figure(samples)}; {zero} under 0.05 ms")
        elif service == "submit":  # submit's hops are not split by trigger
            print(f"  {label:14} {figure(samples)} (block and pending bundles)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=300)
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--early", default="", help="comma list of simulate.early_victim_traces_per_s, one run each"
    )
    parser.add_argument(
        "--reference", type=float, default=None, help="simulate.reference_sample_rate (1: all)"
    )
    parser.add_argument(
        "--simulate-code",
        default="",
        help="comma list of checkout roots simulate runs, one run each",
    )
    args = parser.parse_args()
    if args.simulate_code:
        for k, root in enumerate(args.simulate_code.split(",")):
            logged = one_run(args.swaps, args.rate, args.seed, {}, root)
            report(f"run {k + 1} simulate code {root}", logged)
        return
    runs = [r for r in args.early.split(",") if r] or [""]
    for k, value in enumerate(runs):
        simulate: dict[str, Any] = (
            {} if value == "" else {"early_victim_traces_per_s": float(value)}
        )
        if args.reference is not None:
            simulate["reference_sample_rate"] = args.reference
        logged = one_run(args.swaps, args.rate, args.seed + k, simulate)
        report(f"run {k + 1} simulate {simulate or 'defaults'}", logged)


if __name__ == "__main__":
    main()
