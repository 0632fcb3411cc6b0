"""Scenario 4, simulation latency: one executor bundle on the devnet, through pyrevm (warm: a
forked EVM reused with snapshot/revert; cold: a fresh fork, which fetches every account and slot
over RPC), through anvil's `eth_call` (raw JSON-RPC on a kept-alive connection), and through
py-evm (from the bundle's recorded pre-state, as simulate's reference engine runs it).

The pyrevm and py-evm rows run the product's own engines (services/simulate engine.run_bundle
and reference.run_reference: the call plus the two balance reads that measure profit); the
eth_call row compares the bare call with pyrevm's bare call, since eth_call cannot read state
after the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from pyrevm import EVM

from bench.bundle import DevnetBundle, build_bundle
from bench.results import Row, ScenarioResult
from bench.stack import CHAIN_ID, Stack, devnet_stack
from bench.stats import RunStats, ratio, run_stats, summarize

KEY = "simulation"
TITLE = "Simulation latency: one executor bundle"


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - started) / 1e6)
    return out


def _measure(stack: Stack, tiny: bool) -> ScenarioResult:
    from services.simulate import engine, reference

    runs, warm_n, cold_n, pyevm_n = (2, 20, 2, 2) if tiny else (5, 400, 12, 12)
    bundle: DevnetBundle = build_bundle(stack)
    env = engine.BlockEnvSpec(
        CHAIN_ID, bundle.block + 1, bundle.timestamp + 1, bundle.base_fee, bundle.gas_limit
    )
    tx = engine.TxSpec(bundle.owner, bundle.executor, bytes.fromhex(bundle.data[2:]), 0, 1_000_000)
    url = stack.node.rpc_url

    def fresh() -> EVM:
        return EVM(fork_url=url, fork_block=hex(bundle.block), spec_id=engine.SPEC,
                   env=env.pyrevm_env())  # fmt: skip

    def bare(evm: EVM) -> None:
        checkpoint = evm.snapshot()
        try:
            outcome = engine.call(evm, tx)
            if not outcome.success:
                raise RuntimeError(f"bundle reverted on pyrevm: {outcome.revert}")
        finally:
            evm.revert(checkpoint)

    def full(evm: EVM) -> None:
        sim = engine.run_bundle(evm, tx, bundle.profit_token, bundle.executor)
        if not sim.success:
            raise RuntimeError(f"bundle reverted on pyrevm: {sim.revert}")

    call = {"from": bundle.owner, "to": bundle.executor, "data": bundle.data, "gas": "0xf4240"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [call, hex(bundle.block)]}
    prestate = asyncio.run(reference.fetch_prestate(_async_rpc(url), [tx], bundle.block, env))
    series: dict[str, list[RunStats]] = {}
    samples: dict[str, list[float]] = {}

    def record(name: str, values: list[float]) -> None:
        series.setdefault(name, []).append(run_stats(values))
        samples.setdefault(name, []).extend(values)

    with httpx.Client(timeout=30) as client:

        def eth_call() -> None:
            reply = client.post(url, json=body).json()
            if "error" in reply:
                raise RuntimeError(f"eth_call reverted: {reply['error']}")

        def py_evm() -> None:
            sim = reference.run_reference(prestate, env, tx, bundle.profit_token, bundle.executor)
            if not sim.success:
                raise RuntimeError(f"bundle reverted on py-evm: {sim.revert}")

        for _ in range(runs):
            evm = fresh()
            bare(evm)  # warm it: the first call fetches state over RPC
            record("pyrevm warm call", _timed(lambda e=evm: bare(e), warm_n))
            record("pyrevm warm bundle", _timed(lambda e=evm: full(e), warm_n))
            record("pyrevm cold call", _timed(lambda: bare(fresh()), cold_n))
            record("anvil eth_call", _timed(eth_call, warm_n))
            record("py-evm bundle", _timed(py_evm, pyevm_n))

    s = {name: summarize(values) for name, values in series.items()}
    result = ScenarioResult(KEY, TITLE, samples=samples)
    note = f"{bundle.hops}-hop cycle, expected profit {bundle.expected_profit / 1e18:.5f} WETH"
    result.rows += [
        Row("pyrevm warm, bare call", "ms", s["pyrevm warm call"], "anvil eth_call",
            s["anvil eth_call"], ratio(s["anvil eth_call"].p50, s["pyrevm warm call"].p50),
            "eth_call/pyrevm", note),
        Row("pyrevm cold (fresh fork + call)", "ms", s["pyrevm cold call"], "anvil eth_call",
            s["anvil eth_call"], ratio(s["pyrevm cold call"].p50, s["anvil eth_call"].p50),
            "pyrevm cold/eth_call", "fork fetches every account and slot over RPC"),
        Row("pyrevm warm bundle (call + 2 balance reads)", "ms", s["pyrevm warm bundle"],
            "py-evm from pre-state", s["py-evm bundle"],
            ratio(s["py-evm bundle"].p50, s["pyrevm warm bundle"].p50), "py-evm/pyrevm",
            "services/simulate engine vs its reference engine"),
        Row("pyrevm warm/cold", "ms", s["pyrevm warm call"], "pyrevm cold",
            s["pyrevm cold call"], ratio(s["pyrevm cold call"].p50, s["pyrevm warm call"].p50),
            "cold/warm", f"{warm_n} warm, {cold_n} cold calls × {runs} runs"),
    ]  # fmt: skip
    return result


def _async_rpc(url: str) -> Callable[[str, list[Any]], Any]:
    async def rpc(method: str, params: list[Any]) -> Any:
        async with httpx.AsyncClient(timeout=30) as client:
            reply = (
                await client.post(
                    url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                )
            ).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    return rpc


def run(tiny: bool = False) -> ScenarioResult:
    with devnet_stack() as stack:
        return _measure(stack, tiny)
