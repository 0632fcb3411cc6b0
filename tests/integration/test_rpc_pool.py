"""RpcPool against real anvil nodes: failover, chain-id check, lag ranking, live controls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import ChainIdMismatch, RpcPool
from mev_common.settings import RpcEndpoint
from mev_ops.devnet.anvil import AnvilNode, start_anvil
from mev_ops.nats_server import free_port

CHAIN = 31337


@pytest.fixture(scope="module")
def anvils(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, AnvilNode]]:
    base: Path = tmp_path_factory.mktemp("anvil")
    a = start_anvil(free_port(), CHAIN, None, base / "a")
    b = start_anvil(free_port(), CHAIN, None, base / "b")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def endpoint(name: str, url: str, **kw: float) -> RpcEndpoint:
    return RpcEndpoint(name=name, url=url, timeout_s=kw.pop("timeout_s", 1.0), **kw)


async def test_fails_over_from_a_dead_endpoint_at_once(anvils: tuple[AnvilNode, AnvilNode]) -> None:
    a, _ = anvils
    dead = f"http://127.0.0.1:{free_port()}"
    pool = RpcPool([endpoint("dead", dead), endpoint("z", a.rpc_url, rate_limit_rps=1000)])
    try:
        # equal latency: ranked by name, so "dead" is tried first and "z" answers in round one
        assert int(await pool.call("eth_chainId", rounds=1), 16) == CHAIN
        health = pool.health()
        assert health["dead"]["up"] is False
        assert health["dead"]["errors"] == 1
        assert health["z"]["up"] is True
        # the dead one now sits out: the next call goes straight to "a"
        await pool.call("eth_blockNumber")
        assert pool.health()["dead"]["errors"] == 1
    finally:
        await pool.close()


async def test_all_dead_raises_after_rounds() -> None:
    pool = RpcPool([endpoint("x", f"http://127.0.0.1:{free_port()}")])
    try:
        with pytest.raises(RpcError, match="every endpoint failed"):
            await pool.call("eth_chainId", rounds=2)
    finally:
        await pool.close()


async def test_node_errors_are_not_retried_elsewhere(anvils: tuple[AnvilNode, AnvilNode]) -> None:
    a, b = anvils
    pool = RpcPool([endpoint("a", a.rpc_url), endpoint("b", b.rpc_url)])
    try:
        with pytest.raises(RpcError) as err:
            await pool.call("eth_noSuchMethod")
        assert err.value.code == -32601
        assert pool.health()["a"]["errors"] == 0
    finally:
        await pool.close()


async def test_chain_id_mismatch_refuses(anvils: tuple[AnvilNode, AnvilNode]) -> None:
    a, _ = anvils
    pool = RpcPool([endpoint("a", a.rpc_url)])
    try:
        await pool.verify_chain_id(CHAIN)
        with pytest.raises(ChainIdMismatch) as err:
            await pool.verify_chain_id(999)
        assert str(err.value) == (
            "RPC endpoint 'a' serves chain 31337, the config says chain.chain_id 999: "
            "refusing to run"
        )
    finally:
        await pool.close()


async def test_lagging_endpoint_is_ranked_last(anvils: tuple[AnvilNode, AnvilNode]) -> None:
    a, b = anvils
    async with httpx.AsyncClient() as client:
        await client.post(
            a.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x10"]}
        )
    # "b" is faster on paper, but 16 blocks behind
    pool = RpcPool([endpoint("a", a.rpc_url), endpoint("b", b.rpc_url)], max_lag_blocks=3)
    try:
        await pool.refresh_heads()
        pool.states["a"].latency_s, pool.states["b"].latency_s = 0.5, 0.001
        head = int(await pool.call("eth_blockNumber"), 16)
        assert head == pool.health()["a"]["head"] >= 16
    finally:
        await pool.close()


async def test_live_rate_factor_and_pool_size(anvils: tuple[AnvilNode, AnvilNode]) -> None:
    a, _ = anvils
    pool = RpcPool([endpoint("a", a.rpc_url, rate_limit_rps=50)])
    try:
        pool.set_rate_factor(0.8)
        assert pool.health()["a"]["rate_rps"] == 40.0
        await pool.set_pool_size(50)
        assert pool.clients["a"].pool_size == 50
        assert int(await pool.call("eth_chainId"), 16) == CHAIN
    finally:
        await pool.close()
