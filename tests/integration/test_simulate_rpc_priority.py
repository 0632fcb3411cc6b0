"""Simulate's RPC consumers in priority order on one endpoint's token bucket (rpc_priority.py).

Real anvil and deployment, a real RpcPool at 20 calls a second (burst 20), every ask for a
token recorded with the wait the bucket answered. Once lower-priority calls have spent the
burst, a higher-priority call takes its token at its first ask while the lower ones queue:
block diffs before victim traces, victim traces before the reference check and pool probes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import pytest
from mev_common.chain.rpc_pool import RpcPool
from mev_common.executor import encode_execute
from mev_common.settings import RpcEndpoint
from mev_common.settings.sections import SimulateSettings

from services.simulate.block_diff import TRACE_METHOD, parse_block_diff, trace_params
from services.simulate.engine import TxSpec
from services.simulate.prefetch import PoolProbe, prefetch_pool, prefetch_victim
from services.simulate.reference import fetch_bundle_prestate
from services.simulate.rpc_priority import SimulateCalls
from services.simulate.warm import WarmEvm
from tests.integration.test_simulate import CHAIN, WETH, Chain, devnet_chain
from tests.integration.test_simulate_victim_prefetch import CYCLE, user_of, victim_swap

RATE = 20


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from devnet_chain(tmp_path_factory.mktemp("simulate-rpc-priority-devnet"))


class Recorded:
    """The pool's one bucket, each ask recorded as (task name, seconds the bucket said to
    wait); `spent` is set once more asks than the burst were made."""

    def __init__(self, url: str) -> None:
        self.pool = RpcPool([RpcEndpoint(name="node", url=url, rate_limit_rps=RATE)])
        self.calls = SimulateCalls.on(self.pool, SimulateSettings().victim_trace_reserve)
        self.asks: list[tuple[str, float]] = []
        self.spent = asyncio.Event()
        bucket = self.pool.buckets["node"]
        take = bucket.try_take

        def recording(tokens: float = 1.0, keep: float = 0.0) -> float:
            wait = take(tokens, keep)
            task = asyncio.current_task()
            self.asks.append((task.get_name() if task else "", wait))
            if len(self.asks) > bucket.burst:
                self.spent.set()
            return wait

        bucket.try_take = recording  # type: ignore[method-assign]

    def waits(self, prefix: str, since: int = 0) -> list[float]:
        return [w for name, w in self.asks[since:] if name.startswith(prefix)]


def looping(work: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def loop() -> None:
        while True:
            await work()

    return loop


async def block_diff(calls: SimulateCalls, number: int) -> int:
    raw = await calls.diff(TRACE_METHOD, trace_params(number))
    return len(parse_block_diff(number, raw).writes)


def swapped_block(c: Chain) -> int:
    """A mined block with a swap in it (a diff with writes), the warm EVM's next head."""
    c.swap("A", ["WETH", "USDC"], WETH, user=0)
    return c.mine().number


def test_a_block_diff_never_waits_behind_victim_traces(chain: Chain) -> None:
    """Four victim traces at a time, again and again (early ones and opportunities' own), spend
    the bucket; the block's diff, on which every simulation through a pool it changed waits
    (then reforks), takes its token at its first ask: victim traces leave it one."""
    c = chain

    async def run() -> None:
        r = Recorded(c.url)
        number = swapped_block(c)
        warm = WarmEvm(c.url, CHAIN, c.executor, 1.0)
        warm.fork(c.block(number))
        victims = [victim_swap(c, user_of(c, k % 3), WETH) for k in range(4)]
        flood = [
            asyncio.create_task(looping(partial(prefetch_victim, r.calls.victim, warm, v))(),
                                name=f"victim{k}")
            for k, v in enumerate(victims)
        ]  # fmt: skip
        try:
            await r.spent.wait()
            queued = [w > 0 for w in r.waits("victim")[-len(flood) :]]
            diff = asyncio.create_task(block_diff(r.calls, number), name="diff")
            assert await diff > 0
            assert r.waits("diff") == [0.0]  # its token at its first ask
            assert any(queued)  # while victim traces waited for theirs
        finally:
            for task in flood:
                task.cancel()
            await r.pool.close()

    asyncio.run(run())


def test_victim_traces_and_diffs_never_wait_behind_reference_checks_or_probes(
    chain: Chain,
) -> None:
    """A refork's re-prefetch (~13 traces a pool) and reference checks back to back (their
    prestate: 3 traces each) spend the bucket; two victim traces (EARLY_IN_FLIGHT) and a block
    diff asked then take their tokens at their first ask, and the reference checks still get
    tokens ahead of the probes (these leave them one)."""
    c = chain

    async def run() -> None:
        r = Recorded(c.url)
        number = swapped_block(c)
        warm = WarmEvm(c.url, CHAIN, c.executor, 1.0)
        warm.fork(c.block(number - 1))
        warm.fork(c.block(number), "reorg")  # the refork: every pool again
        assert warm.env is not None
        env = warm.env
        probes = [PoolProbe(p["address"], p["token0"], p["token1"]) for p in c.d["pairs"]]
        hops = c.hops([("B", "WETH", "USDC"), *CYCLE])
        backrun = TxSpec(c.bot, c.executor, encode_execute(hops, WETH, 0, True), 0, 2_000_000)
        bundle = [victim_swap(c, user_of(c, 0), WETH), backrun]

        async def reprefetch() -> None:
            for probe in probes:
                await prefetch_pool(r.calls.probe, warm, probe, c.bot)

        async def reference() -> None:
            await fetch_bundle_prestate(r.calls.reference, bundle, number, env)

        background = [
            asyncio.create_task(reprefetch(), name="prefetch"),
            asyncio.create_task(looping(reference)(), name="reference"),
        ]
        try:
            await r.spent.wait()
            since = len(r.asks)
            victims = [victim_swap(c, user_of(c, k), WETH) for k in (1, 2)]
            traces = [
                asyncio.create_task(prefetch_victim(r.calls.victim, warm, v), name=f"victim{k}")
                for k, v in enumerate(victims)
            ]
            diff = asyncio.create_task(block_diff(r.calls, number), name="diff")
            assert await asyncio.gather(*traces) == [True, True]
            assert await diff > 0
            assert not background[0].done()  # still re-prefetching meanwhile
            assert r.waits("victim") == [0.0, 0.0]  # each at its first ask
            assert r.waits("diff") == [0.0]
            await asyncio.sleep(0.5)  # ten tokens more: to the reference first
            later = r.asks[since:]
            assert any(w > 0 for name, w in later if name == "prefetch")  # probes queued
            assert [w for name, w in later if name == "reference"].count(0.0) >= 5
            assert [w for name, w in later if name == "prefetch"].count(0.0) <= 2
        finally:
            for task in background:
                task.cancel()
            await r.pool.close()

    asyncio.run(run())


def test_refork_reprefetch_never_makes_a_victim_trace_wait(chain: Chain) -> None:
    """After a refork simulate probes every pool again (~13 traces a V2 pair) through the same
    per-endpoint token bucket as victim traces. Drained by the probes, the bucket made a victim
    trace wait for the next token (1/rate: 40 ms at the default 25 calls/s, against a 100 ms
    trace timeout), a tie with the probe waiting for it too. The probes now leave
    `simulate.victim_trace_reserve` tokens (and more) to victim traces: two traces
    (EARLY_IN_FLIGHT) at once take their tokens at once, however busy the re-prefetch."""
    c = chain

    async def run() -> None:
        r = Recorded(c.url)
        try:
            warm = WarmEvm(c.url, CHAIN, c.executor, 1.0)
            warm.fork(c.mine())
            warm.fork(c.mine(), "reorg")  # the refork: every pool again
            probes = [PoolProbe(p["address"], p["token0"], p["token1"]) for p in c.d["pairs"]]

            async def reprefetch() -> None:
                for probe in probes:
                    await prefetch_pool(r.calls.probe, warm, probe, c.bot)

            background = asyncio.create_task(reprefetch(), name="prefetch")
            await r.spent.wait()
            victims = [victim_swap(c, user_of(c, k), WETH) for k in (1, 2)]
            traces = [
                asyncio.create_task(prefetch_victim(r.calls.victim, warm, v), name=f"victim{k}")
                for k, v in enumerate(victims)
            ]
            assert await asyncio.gather(*traces) == [True, True]
            assert not background.done()  # still re-prefetching meanwhile
            background.cancel()
            assert r.waits("victim") == [0.0, 0.0]  # each at its first ask
        finally:
            await r.pool.close()

    asyncio.run(run())
