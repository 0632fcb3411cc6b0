"""Differential: the warm EVM built from `latest` reads only (HyperEVM) equals a fresh fork at the
same block to the unit in gas and to the wei in profit, before and after patched blocks.

Real anvil with the devnet deployment, blocks mined by hand. The warm EVM has no fork URL: its
state comes from latest_state.discover (traced probes, then one checked batch naming its block)
and every call it makes goes through HyperEVM's rules (the stand-in's refusal_for), so a read at
any tag but `latest` fails the test. A block mined between discovery and load is caught up by
the logs of the same batch, never mixed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mev_common.chain.latest import checked
from mev_ops.devnet.hyperevm_rules import refusal_for

from services.simulate.engine import run_bundle
from services.simulate.latest_state import discover, reload
from services.simulate.prefetch import PoolProbe
from services.simulate.warm import WarmEvm
from tests.integration.test_simulate import CHAIN, WETH, Chain, bundle_txs, devnet_chain


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from devnet_chain(tmp_path_factory.mktemp("latest-state-devnet"))


class LatestOnly:
    """A batch caller to anvil that applies HyperEVM's refusals first and counts calls."""

    def __init__(self, c: Chain, before: Any = None) -> None:
        self.c, self.calls, self.batches, self.before = c, 0, 0, before

    async def __call__(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        for method, params in calls:
            refused = refusal_for(method, params, None)
            assert refused is None, (method, params, refused)
        if self.before is not None:
            self.before(self.batches)
        self.calls += len(calls)
        self.batches += 1
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in enumerate(calls)]  # fmt: skip
        async with httpx.AsyncClient(timeout=30) as client:
            replies = (await client.post(self.c.url, json=body)).json()
        by_id = {r["id"]: r for r in replies}
        return [by_id[i].get("result") for i in range(len(calls))]


def probes(c: Chain) -> list[PoolProbe]:
    return [PoolProbe(p["address"], p["token0"], p["token1"]) for p in c.d["pairs"]]


def test_checked_batch_refuses_a_moved_block() -> None:
    head = {"number": "0x10", "hash": "0x" + "ab" * 32}
    assert checked([head, "a", "0x10"]) is not None
    assert checked([head, "a", "0x11"]) is None  # a block landed inside the batch


def test_latest_only_warm_evm_equals_a_fresh_fork(chain: Chain) -> None:
    c = chain
    head = c.mine()
    warm = WarmEvm(None, CHAIN, c.executor, 1.0)
    warm.fork(head)
    rpc = LatestOnly(c)
    started = time.perf_counter()
    loaded = asyncio.run(discover(rpc, warm, probes(c), c.bot))
    took = time.perf_counter() - started
    print(f"discovery: {len(loaded)} pairs, {rpc.calls} calls, {rpc.batches} batches, {took:.2f} s")
    assert sorted(loaded) == sorted(p["address"] for p in c.d["pairs"])
    assert warm.head == head and warm.forks == 1
    fresh = c.fresh(head)
    for tx in bundle_txs(c):
        assert warm.evm is not None
        assert run_bundle(warm.evm, tx, c.weth, c.executor) == run_bundle(
            fresh, tx, c.weth, c.executor
        )
    # swaps, each block patched from its logs only: still equal, no RPC
    calls = rpc.calls
    for dex, path, size in (
        ("B", ["WETH", "USDC"], 40 * WETH),
        ("A", ["USDC", "DAI"], 20_000 * 10**6),
    ):
        c.swap(dex, path, size)
        block = c.mine()
        warm.advance(block)
        assert warm.head == block and warm.forks == 1
        fresh = c.fresh(block)
        for tx in bundle_txs(c):
            assert warm.evm is not None
            assert run_bundle(warm.evm, tx, c.weth, c.executor) == run_bundle(
                fresh, tx, c.weth, c.executor
            )
    assert rpc.calls == calls
    # a refork empties the EVM; one checked batch at latest loads every known key again
    c.swap("A", ["WETH", "DAI"], 10 * WETH)
    block = c.mine()
    warm.fork(block, "test")
    assert warm.reload_needed and not warm.has_state([p.pair for p in probes(c)])
    batches = rpc.batches
    asyncio.run(reload(rpc, warm))
    assert rpc.batches == batches + 1 and warm.has_state([p.pair for p in probes(c)])
    fresh = c.fresh(block)
    for tx in bundle_txs(c):
        assert warm.evm is not None
        assert run_bundle(warm.evm, tx, c.weth, c.executor) == run_bundle(
            fresh, tx, c.weth, c.executor
        )


def test_a_block_mined_before_the_load_is_caught_up_by_its_logs(chain: Chain) -> None:
    """Discovery reads at latest while the warm EVM is a block behind: the load batch carries
    the logs since the warm head, so the EVM is patched to the read's block, then loaded."""
    c = chain
    head = c.mine()
    warm = WarmEvm(None, CHAIN, c.executor, 1.0)
    warm.fork(head)
    mined: list[int] = []

    def before(n: int) -> None:  # a swap lands before the first batch: warm is behind
        if not mined:
            c.swap("B", ["WETH", "USDC"], 25 * WETH)
            mined.append(c.mine().number)

    asyncio.run(discover(LatestOnly(c, before), warm, probes(c), c.bot))
    assert warm.head is not None and warm.head.number == mined[0] and warm.forks == 1
    fresh = c.fresh(warm.head)
    for tx in bundle_txs(c):
        assert warm.evm is not None
        assert run_bundle(warm.evm, tx, c.weth, c.executor) == run_bundle(
            fresh, tx, c.weth, c.executor
        )
