"""Submit's "is our trade still pending?" check on several endpoints (settlement._check_pool).

A backrun is sent to its victim's node alone (services/submit/sender.py), so another node may
never have heard of it. Two real anvils that share nothing: asking only the best-ranked one
called such a trade dropped and freed its nonce while it was still pending on the other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool
from mev_common.settings import RpcEndpoint
from mev_ops.devnet.anvil import AnvilNode, free_port, start_anvil

from services.submit.ports import RpcChain
from tests.support.chain import rpc

CHAIN_ID = 31337


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, AnvilNode]]:
    base = tmp_path_factory.mktemp("pool-check")
    started: list[AnvilNode] = []
    try:
        for name in ("quiet", "holder"):
            started.append(start_anvil(free_port(), CHAIN_ID, None, base / name))
        yield started[0], started[1]
    finally:
        for node in started:
            node.stop()


def _pending_on(node: AnvilNode) -> str:
    """A tx left pending in `node`'s pool (mining off), known to no other node."""
    rpc(node.rpc_url, "evm_setAutomine", [False])
    sender = rpc(node.rpc_url, "eth_accounts", [])[0]
    return str(
        rpc(node.rpc_url, "eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x1"}])
    )


def _pool(*named: tuple[str, str]) -> RpcPool:
    return RpcPool([RpcEndpoint(name=n, url=u, timeout_s=2.0) for n, u in named])


async def test_a_trade_pending_on_one_node_only_is_held_not_dropped(
    nodes: tuple[AnvilNode, AnvilNode], tmp_path: Path
) -> None:
    quiet, holder = nodes
    tx_hash = _pending_on(holder)
    # equal latency ranks by name: "a-quiet" is the best-ranked node, the one asked before
    pool = _pool(("a-quiet", quiet.rpc_url), ("b-holder", holder.rpc_url))
    chain = RpcChain(pool)
    try:
        # the old question went to one node: the one that never had the trade answers "unknown"
        assert await pool.call("eth_getTransactionByHash", [tx_hash]) is None
        assert await chain.held_anywhere([tx_hash]) is True
        assert await chain.held_anywhere(["0x" + "ab" * 32]) is False
        # a node that does not answer is skipped; none answering is an error, not "dropped"
        dead = _pool(("a-dead", f"http://127.0.0.1:{free_port()}"), ("b-holder", holder.rpc_url))
        assert await RpcChain(dead).held_anywhere([tx_hash]) is True
        assert await RpcChain(dead).held_anywhere(["0x" + "ab" * 32]) is False
        with pytest.raises(RpcError):
            await RpcChain(_pool(("dead", f"http://127.0.0.1:{free_port()}"))).held_anywhere(
                [tx_hash]
            )
    finally:
        await pool.close()
