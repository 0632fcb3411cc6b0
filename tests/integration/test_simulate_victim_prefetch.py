"""A backrun's victim loaded at the head by one trace (prefetch.prefetch_victim): the
simulation then makes no RPC, reads the victim's real state at the head, and equals a fresh fork.

Real anvil and deployment, a counting proxy in front of it (every fetch the warm EVM makes).
The victim is a sender funded after the warm EVM's fork (an ETH transfer: no log, nothing the
warm EVM patches), sending ETH into a swap as bench's synthetic triggers do. Without the
prefetch pyrevm reads that sender lazily, over RPC on the hot path, and at the fork block,
where it had no ETH: the victim "reverts" and the backrun is lost. With it: no RPC, the victim
runs, and gas and profit equal a fresh fork's at the head. An unfunded victim is refused by the
node ("unfunded": the service drops the backrun); nothing is assumed from the pending tx.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.executor import encode_execute

from services.simulate.engine import TxSpec, run_backrun
from services.simulate.prefetch import (
    PoolProbe,
    VictimLoads,
    prefetch_pool,
    prefetch_victim,
    trace_refusal,
)
from services.simulate.warm import WarmEvm
from tests.integration.test_simulate import CHAIN, WETH, Chain, devnet_chain
from tests.integration.test_simulate_warm import CountingProxy

SWAP_ETH = function_signature_to_4byte_selector(
    "swapExactETHForTokens(uint256,address[],address,uint256)"
)
CYCLE = [("A", "USDC", "WETH")]  # the victim buys USDC with WETH on A: buy WETH back there...


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from devnet_chain(tmp_path_factory.mktemp("simulate-victim-devnet"))


def fresh_sender(tag: str) -> str:
    return to_checksum_address(hashlib.sha256(tag.encode()).digest()[:20])


def victim_swap(c: Chain, sender: str, wei: int) -> TxSpec:
    router = next(x for x in c.d["dexes"] if x["name"] == "A")["router"]
    path = [c.token("WETH"), c.token("USDC")]
    args = encode(["uint256", "address[]", "address", "uint256"], [0, path, sender, 2**40])
    return TxSpec(sender, router, SWAP_ETH + args, wei, 300_000)


def test_victim_prefetch_no_rpc_and_head_state(chain: Chain) -> None:
    c = chain
    proxy = CountingProxy(c.url)
    try:
        head = c.mine()
        warm = WarmEvm(proxy.url, CHAIN, c.executor, 1.0)
        warm.fork(head)
        for p in c.d["pairs"]:  # as the service does at start
            probe = PoolProbe(p["address"], p["token0"], p["token1"])
            assert asyncio.run(prefetch_pool(c.arpc, warm, probe, c.bot))
        funded, lazy, broke = (fresh_sender(f"victim-prefetch:{k}") for k in range(3))
        user = c.d["users"][1]
        user = user["address"] if isinstance(user, dict) else user
        for who in (funded, lazy):  # funded after the fork: a plain transfer, no log to patch
            c.rpc("eth_sendTransaction", [{"from": user, "to": who, "value": hex(100 * WETH)}])
        head = c.mine()
        warm.advance(head)
        assert warm.forks == 1
        # ... from B, back to WETH: a 2-pool cycle through the pool the victim moved
        hops = c.hops([("B", "WETH", "USDC"), *CYCLE])
        tx = TxSpec(c.bot, c.executor, encode_execute(hops, WETH, 0, True), 0, 2_000_000)
        carried = warm.carried_slots([(h.pair, h.token_in, h.token_out) for h in hops])
        assert carried is not None and warm.evm is not None

        # without the prefetch: lazy RPC on the hot path, and the fork block's balance (none)
        calls = proxy.total()
        cold = run_backrun(warm.evm, tx, c.weth, c.executor, victim_swap(c, lazy, 20 * WETH),
                           carried)  # fmt: skip
        assert proxy.total() > calls and cold.victim_failed

        # with it: the trace goes to the node directly (off the hot path), the run makes no RPC
        victim = victim_swap(c, funded, 20 * WETH)
        assert asyncio.run(prefetch_victim(c.arpc, warm, victim))
        calls = proxy.total()
        warm_result = run_backrun(warm.evm, tx, c.weth, c.executor, victim, carried)
        assert proxy.total() == calls
        exact = run_backrun(c.fresh(head), tx, c.weth, c.executor, victim, carried)
        assert warm_result == exact and not warm_result.victim_failed
        assert warm_result.success and warm_result.profit > 0

        # an unfunded victim: the node refuses the trace, and the service drops the backrun
        poor = victim_swap(c, broke, 20 * WETH)
        with pytest.raises(AssertionError) as refused:
            asyncio.run(prefetch_victim(c.arpc, warm, poor))
        assert trace_refusal(refused.value) == "unfunded"

        # a block between the trace and the load: nothing loaded (values of another block)
        at = warm.head

        async def block_arrives(method: str, params: list[Any]) -> Any:
            reply = await c.arpc(method, params)
            warm.head = c.block("latest")  # another Block object: the EVM "moved on"
            return reply

        assert not asyncio.run(prefetch_victim(block_arrives, warm, victim))
        warm.head = at
    finally:
        proxy.stop()


def test_victim_loads_once_per_fork_and_gives_up_without_tracer() -> None:
    loads = VictimLoads(limit=2, max_errors=2)
    assert loads.needed("0xa", forks=1)
    loads.done("0xa", ok=True)
    assert not loads.needed("0xa", forks=1)
    assert loads.needed("0xa", forks=2)  # a refork forgets what was loaded
    loads.done("0xa", ok=False)  # a block moved in between: try again next time
    assert loads.needed("0xa", forks=2)
    for h in ("0xa", "0xb", "0xc"):
        loads.done(h, ok=True)
    assert list(loads.loaded) == ["0xb", "0xc"]  # bounded, oldest out
    loads.failed()
    assert loads.needed("0xd", forks=2)
    loads.failed()  # an RPC without debug_traceCall: stop paying a failing round trip
    assert not loads.needed("0xd", forks=2)


def test_trace_refusals() -> None:
    from mev_common.chain.jsonrpc import RpcError

    anvil = RpcError("debug_traceCall", "Insufficient funds for gas * price + value", -32003)
    geth = RpcError("debug_traceCall", "insufficient funds for gas * price + value", -32000)
    missing = RpcError("debug_traceCall", "the method debug_traceCall does not exist", -32601)
    assert [trace_refusal(e) for e in (anvil, geth, missing)] == ["unfunded", "unfunded",
                                                                  "unsupported"]  # fmt: skip
    assert trace_refusal(RpcError("debug_traceCall", "every endpoint failed: timeout")) == "error"


def user_of(c: Chain, k: int) -> str:
    user = c.d["users"][k]
    return user["address"] if isinstance(user, dict) else user
