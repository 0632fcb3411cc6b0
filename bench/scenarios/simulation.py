"""Scenario 4, simulation latency: one executor bundle on the devnet, through pyrevm (warm: a
forked EVM reused with snapshot/revert; cold: a fresh fork, which fetches every account and slot
over RPC), through anvil's `eth_call` (raw JSON-RPC on a kept-alive connection), and through
py-evm (from the bundle's recorded pre-state, as simulate's reference engine runs it).

Across blocks, before and after simulate kept its EVM warm (issue 12), in one run on the same
blocks: each block a user swap moves the cycle's pools, then the time from the block to the
first simulation of the bundle, (before) with a fresh fork at the block, as simulate did for
every block that changed state, and (after) with simulate's warm EVM patched from the block's
Sync/Swap logs (warm.WarmEvm.advance). Exact samples, one per block each; the two results are
compared on every block (success, gas, profit) and a mismatch fails the scenario. The same on
blocks where a user's swap moves a Uniswap V3 pool, with a bundle through that pool: (before) a
refork, as simulate did for a V3 pool changed since its fork, and (after) the warm EVM patched
with the node's diff of the block (one debug_traceBlockByNumber, timed in: the wait of a
simulation through that pool) then the simulation.

The pyrevm and py-evm rows run the product's own engines (services/simulate engine.run_bundle
and reference.run_reference: the call plus the two balance reads that measure profit); the
eth_call row compares the bare call with pyrevm's bare call, since eth_call cannot read state
after the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
from mev_common.messages import Block
from pyrevm import EVM

from bench.bundle import DevnetBundle, build_bundle
from bench.results import Row, ScenarioResult
from bench.stack import CHAIN_ID, Stack, devnet_stack
from bench.stats import RunStats, Summary, ratio, run_stats, summarize

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
            record("pyrevm warm call", _timed(partial(bare, evm), warm_n))
            record("pyrevm warm bundle", _timed(partial(full, evm), warm_n))
            record("pyrevm cold call", _timed(lambda: bare(fresh()), cold_n))
            record("anvil eth_call", _timed(eth_call, warm_n))
            record("py-evm bundle", _timed(py_evm, pyevm_n))

    blocks_n = 6 if tiny else 200
    before, after = _across_blocks(stack, bundle, tx, blocks_n)
    record("first sim after a block: refork", before)
    record("first sim after a block: warm", after)
    before_v3, after_v3, runs_v3 = _across_v3_blocks(stack, bundle, blocks_n)
    record("first V3 sim after a V3 block: refork", before_v3)
    record("first V3 sim after a V3 block: diff", after_v3)
    record("first V3 sim after a V3 block: run", runs_v3)

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
        _vs_refork(s, "block → first simulation, warm EVM patched (after)",
                   "first sim after a block: warm", "first sim after a block: refork",
                   f"exact samples: n={len(after)} after, n={len(before)} before, same {blocks_n}"
                   " blocks; results equal on every block", "refork per block (before)"),
        _vs_refork(s, "V3 block → first simulation through the pool, block diff + sim (after)",
                   "first V3 sim after a V3 block: diff", "first V3 sim after a V3 block: refork",
                   f"exact samples: n={len(after_v3)} after, n={len(before_v3)} before, same"
                   f" {blocks_n} blocks, each a user V3 swap; results equal on every block,"
                   " 0 reforks after"),
        _vs_refork(s, "V3 block → simulation alone, once the diff is in (after)",
                   "first V3 sim after a V3 block: run", "first V3 sim after a V3 block: refork",
                   f"n={len(runs_v3)}: the row above less the diff's trace call and application"
                   " (made off the hot path as the block arrives)"),
    ]  # fmt: skip
    return result


def _vs_refork(
    s: dict[str, Summary],
    label: str,
    after: str,
    before: str,
    note: str,
    baseline: str = "refork (before)",
) -> Row:
    """A warm-after vs refork-before row, judged on p95."""
    return Row(label, "ms", s[after], baseline, s[before], ratio(s[before].p95, s[after].p95),
               "before p95/after p95", note)  # fmt: skip


def _across_blocks(
    stack: Stack, bundle: DevnetBundle, tx: Any, blocks: int
) -> tuple[list[float], list[float]]:
    """Per block: ms from the block to the first simulation of `tx`, reforking (before) and on
    the warm patched EVM (after). Raises if the two ever disagree."""
    from bench.samples import swap_calldata
    from services.simulate import engine, warm
    from services.simulate.prefetch import PoolProbe, prefetch_pool

    dep = stack.deployment
    tokens = {s: t["address"] for s, t in dep["tokens"].items()}
    user = _user(dep)
    router = next(d["router"] for d in dep["dexes"] if d["name"] == "A")

    block = _block_reader(stack)
    url = stack.node.rpc_url
    live = warm.WarmEvm(url, CHAIN_ID, bundle.executor, 1.0)
    live.fork(block(int(stack.rpc("eth_blockNumber", []), 16)))
    for p in dep["pairs"]:  # as the service does at start, off the hot path
        probe = PoolProbe(p["address"], p["token0"], p["token1"])
        asyncio.run(prefetch_pool(_async_rpc(url), live, probe, bundle.owner))
    refork = warm.WarmEvm(url, CHAIN_ID, bundle.executor, 1.0)
    before, after = [], []
    for i in range(blocks):
        # a user swap each block, alternating direction, on the cycle's DEX A WETH/USDC pool
        path, amount = ((["WETH", "USDC"], 10**18), (["USDC", "WETH"], 2_000 * 10**6))[i % 2]
        data = swap_calldata(amount, 0, [tokens[t] for t in path], user, 2**40)
        mined = stack.send_mined({"from": user, "to": router, "data": data, "gas": "0x61a80"})
        new = block(int(mined["blockNumber"], 16))
        started = time.perf_counter_ns()
        refork.fork(new, "state changed")
        assert refork.evm is not None
        old = engine.run_bundle(refork.evm, tx, bundle.profit_token, bundle.executor)
        before.append((time.perf_counter_ns() - started) / 1e6)
        started = time.perf_counter_ns()
        live.advance(new)
        assert live.evm is not None
        now = engine.run_bundle(live.evm, tx, bundle.profit_token, bundle.executor)
        after.append((time.perf_counter_ns() - started) / 1e6)
        if now != old or live.forks != 1:
            raise RuntimeError(f"block {new.number}: warm {now} != fresh fork {old} "
                               f"(forks {live.forks}: {live.last_refork_reason})")  # fmt: skip
    return before, after


def _across_v3_blocks(
    stack: Stack, bundle: DevnetBundle, blocks: int
) -> tuple[list[float], list[float], list[float]]:
    """Per block with a user's swap on DEX A's WETH/USDC 500 V3 pool: ms from the block to the
    first simulation of a cycle through that pool (V3 WETH->USDC, then B's V2 pair back),
    reforking (before), and on the warm EVM taking the block's diff (after: the trace call,
    its parsing and application, then the run), and of that the run alone. Raises if the two
    ever disagree."""
    from eth_abi import encode
    from mev_common.executor import ExecHop, encode_execute
    from mev_ops.devnet.flow import EXACT_INPUT_SINGLE

    from services.simulate import engine, warm
    from services.simulate.block_diff import TRACE_METHOD, parse_block_diff, trace_params

    dep = stack.deployment
    tokens = {s: t["address"] for s, t in dep["tokens"].items()}
    user = _user(dep)
    pool = next(p for p in dep["v3_pools"] if p["dex"] == "A" and p["fee"] == 500
                and {p["symbol0"], p["symbol1"]} == {"WETH", "USDC"})  # fmt: skip
    router = next(d["swap_router"] for d in dep["v3_dexes"] if d["name"] == "A")
    pair_b = next(p["address"] for p in dep["pairs"] if p["dex"] == "B"
                  and {p["token0"], p["token1"]} == {tokens["WETH"], tokens["USDC"]})  # fmt: skip
    hops = [ExecHop(pool["address"], tokens["WETH"], tokens["USDC"], 5, "v3"),
            ExecHop(pair_b, tokens["USDC"], tokens["WETH"], 30)]  # fmt: skip
    data = encode_execute(hops, 10**17, 0, True)
    tx = engine.TxSpec(bundle.owner, bundle.executor, data, 0, 2_000_000)
    swap_params = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"

    block = _block_reader(stack)
    url = stack.node.rpc_url
    live = warm.WarmEvm(url, CHAIN_ID, bundle.executor, 1.0)
    live.fork(block(int(stack.rpc("eth_blockNumber", []), 16)))
    assert live.evm is not None
    engine.run_bundle(live.evm, tx, tokens["WETH"], bundle.executor)  # the pool seen before
    refork = warm.WarmEvm(url, CHAIN_ID, bundle.executor, 1.0)
    before, after, runs = [], [], []
    with httpx.Client(timeout=30) as client:
        for i in range(blocks):
            side = (("WETH", "USDC", 10**18), ("USDC", "WETH", 2_000 * 10**6))[i % 2]
            params = (tokens[side[0]], tokens[side[1]], 500, user, 2**40, side[2], 0, 0)
            call = EXACT_INPUT_SINGLE + encode([swap_params], [params])
            mined = stack.send_mined({"from": user, "to": router, "data": "0x" + call.hex(),
                                      "gas": hex(600_000)})  # fmt: skip
            new = block(int(mined["blockNumber"], 16))
            started = time.perf_counter_ns()
            refork.fork(new, "V3 pool changed")
            assert refork.evm is not None
            old = engine.run_bundle(refork.evm, tx, tokens["WETH"], bundle.executor)
            before.append((time.perf_counter_ns() - started) / 1e6)
            started = time.perf_counter_ns()
            live.advance(new)
            body = {"jsonrpc": "2.0", "id": 1, "method": TRACE_METHOD,
                    "params": trace_params(new.number)}  # fmt: skip
            live.apply_diff(
                parse_block_diff(new.number, client.post(url, json=body).json()["result"])
            )
            assert live.evm is not None and not live.waits([pool["address"]])
            ran = time.perf_counter_ns()
            now = engine.run_bundle(live.evm, tx, tokens["WETH"], bundle.executor)
            after.append((time.perf_counter_ns() - started) / 1e6)
            runs.append((time.perf_counter_ns() - ran) / 1e6)
            if now != old or live.forks != 1:
                raise RuntimeError(f"V3 block {new.number}: warm {now} != fresh fork {old} "
                                   f"(forks {live.forks}: {live.last_refork_reason})")  # fmt: skip
    return before, after, runs


def _block_reader(stack: Stack) -> Callable[[int], Block]:
    """A block with the logs ingest forwards (V2 and V3 pool events), as simulate gets it."""
    from services.ingest.logs import LOG_TOPICS, logs_for_block

    def block(number: int) -> Block:
        raw = stack.rpc("eth_getBlockByNumber", [hex(number), False])
        logs = stack.rpc("eth_getLogs", [{"fromBlock": hex(number), "toBlock": hex(number),
                                          "topics": [LOG_TOPICS]}])  # fmt: skip
        return Block(chain_id=CHAIN_ID, number=number, hash=raw["hash"],
                     parent_hash=raw["parentHash"], timestamp=int(raw["timestamp"], 16),
                     base_fee_per_gas=int(raw.get("baseFeePerGas", "0x0"), 16),
                     gas_limit=int(raw["gasLimit"], 16),
                     logs=logs_for_block(logs, raw["hash"]))  # fmt: skip

    return block


def _user(dep: dict[str, Any]) -> str:
    user = dep["users"][0]
    return str(user["address"] if isinstance(user, dict) else user)


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
