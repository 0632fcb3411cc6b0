"""A victim traced when its pending swap is seen (services/simulate/victims.py), on real anvil
with the devnet deployment and a real pyrevm fork behind a counting proxy.

- Seen early: the trace runs before the opportunity; the opportunity then waits for nothing
  (no second trace), the simulation makes no RPC, and it equals a fresh fork at the head.
- A victim's state holds for the head it was traced at only: its sender drained in the next
  block (anvil_setBalance: no log, nothing the warm EVM patches), the same victim is traced
  again at the new head and the node refuses it ("unfunded": the backrun is dropped), where
  keeping the old head's load would have simulated, and published, a backrun of a victim that
  can no longer pay.
- A block arriving while the trace is in flight: nothing loaded, and the opportunity's load
  traces again at the new head instead of reading the victim lazily at the fork block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from mev_common.chain.jsonrpc import JsonRpcClient
from mev_common.executor import encode_execute
from mev_common.messages import PendingTx

from services.simulate.engine import TxSpec, run_backrun
from services.simulate.prefetch import PoolProbe, VictimLoads, prefetch_pool
from services.simulate.rpc_priority import SimulateCalls
from services.simulate.victims import EarlyGate, VictimTraces
from services.simulate.warm import WarmEvm
from tests.integration.test_simulate import CHAIN, WETH, Chain, devnet_chain
from tests.integration.test_simulate_victim_prefetch import CYCLE, fresh_sender, victim_swap
from tests.integration.test_simulate_warm import CountingProxy

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from devnet_chain(tmp_path_factory.mktemp("simulate-victim-early-devnet"))


class Counting:
    """The node's RPC, counting debug_traceCall (refused ones too); `on_trace` runs before a
    trace's reply is returned."""

    def __init__(self, url: str) -> None:
        self.client = JsonRpcClient("anvil", url)
        self.traces = 0
        self.on_trace: Any = None

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.traces += method == "debug_traceCall"
        reply = await self.client.call(method, params)
        if method == "debug_traceCall" and self.on_trace is not None:
            self.on_trace()
        return reply


class Host(VictimTraces):
    def __init__(self, rpc: Counting, warm: WarmEvm, routers: frozenset[str]) -> None:
        self.calls = SimulateCalls.plain(rpc.call)
        self.warm = warm
        self.latest_only = False
        self.victims = VictimLoads()
        self.victim_calls = {}
        self.early = EarlyGate(50.0, routers)


def pending(c: Chain, tx: TxSpec, tag: int) -> PendingTx:
    return PendingTx.model_validate(
        {"chain_id": CHAIN, "hash": "0x" + f"{tag:064x}", "from": tx.sender, "to": tx.to,
         "nonce": 0, "value": tx.value, "gas": tx.gas, "input": "0x" + tx.data.hex()}
    )  # fmt: skip


def test_early_trace_then_per_head_then_overtaken(chain: Chain) -> None:
    proxy = CountingProxy(chain.url)
    try:
        asyncio.run(scenario(chain, proxy))
    finally:
        proxy.stop()


async def scenario(c: Chain, proxy: CountingProxy) -> None:
    rpc = Counting(c.url)
    try:
        warm = WarmEvm(proxy.url, CHAIN, c.executor, 1.0)
        warm.fork(c.mine())
        for p in c.d["pairs"]:
            probe = PoolProbe(p["address"], p["token0"], p["token1"])
            assert await prefetch_pool(c.arpc, warm, probe, c.bot)
        victim_at, later = fresh_sender("victim-early:0"), fresh_sender("victim-early:1")
        for who in (victim_at, later):
            c.rpc("anvil_setBalance", [who, hex(100 * WETH)])  # after the fork, no log
        head = c.mine()
        warm.advance(head)
        routers = frozenset(d["router"] for d in c.d["dexes"])
        host = Host(rpc, warm, routers)
        spec = victim_swap(c, victim_at, 20 * WETH)
        victim = pending(c, spec, 1)
        hops = c.hops([("B", "WETH", "USDC"), *CYCLE])
        tx = TxSpec(c.bot, c.executor, encode_execute(hops, WETH, 0, True), 0, 2_000_000)
        carried = warm.carried_slots([(h.pair, h.token_in, h.token_out) for h in hops])
        assert carried is not None and warm.evm is not None

        await host.on_pending(victim)  # the mempool hint: the trace starts
        assert await host.victim_calls[victim.hash] == "loaded"  # before the opportunity
        assert await host.load_victim(victim) and rpc.traces == 1  # nothing to wait for
        fetches = proxy.total()
        warm_result = run_backrun(warm.evm, tx, c.weth, c.executor, spec, carried)
        assert proxy.total() == fetches  # no RPC on the hot path
        exact = run_backrun(c.fresh(head), tx, c.weth, c.executor, spec, carried)
        assert warm_result == exact and warm_result.success and warm_result.profit > 0

        # next block: the victim's sender was drained (no log): traced again, refused
        c.rpc("anvil_setBalance", [victim_at, "0x0"])
        warm.advance(c.mine())
        assert host.victim_needed(victim)
        assert not await host.load_victim(victim) and rpc.traces == 2

        # a block arrives while the trace is in flight: redone at the new head
        other = pending(c, victim_swap(c, later, 20 * WETH), 2)

        def block_arrives() -> None:
            rpc.on_trace = None
            warm.advance(c.mine())

        rpc.on_trace = block_arrives
        moved_from = warm.head
        assert await host.load_victim(other) and rpc.traces == 4
        assert warm.head is not moved_from and not host.victim_needed(other)
    finally:
        await rpc.client.close()
