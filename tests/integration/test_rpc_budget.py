"""The bot's own call count equals what the RPC saw: the HyperEVM stand-in counts independently.

Every path (single calls with retries, batches, the pool's head monitor) goes through
JsonRpcClient, which spends from the process budget; the stand-in in front of a real anvil
counts what arrives. The two must agree exactly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mev_common.chain import budget
from mev_common.chain.rpc_pool import RpcPool
from mev_common.settings import RpcEndpoint
from mev_ops.devnet.anvil import AnvilNode, free_port, start_anvil
from mev_ops.devnet.hyperevm_proxy import HyperEvmProxy, make_server


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[tuple[AnvilNode, HyperEvmProxy, str]]:
    node = start_anvil(free_port(), 999, None, tmp_path)
    proxy = HyperEvmProxy(node.rpc_url, 1000)
    server = make_server(proxy, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield node, proxy, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        proxy.close()
        node.stop()
        budget.configure(None)


async def test_every_call_is_counted_like_the_rpc_counts_it(
    stand_in: tuple[AnvilNode, HyperEvmProxy, str],
) -> None:
    _, proxy, url = stand_in
    spent = budget.configure(100, 0.5)  # 50 a minute for this process
    # two endpoints (both the stand-in): with one there is nothing to rank and the monitor
    # spends nothing under a budget (checked at the end)
    pool = RpcPool([RpcEndpoint(name=n, url=url, rate_limit_rps=1000) for n in ("a", "b")])
    await pool.call("eth_blockNumber")
    await pool.call_batch([("eth_chainId", []), ("eth_gasPrice", []), ("eth_chainId", [])])
    await pool.refresh_heads()
    stop = asyncio.Event()
    monitor = asyncio.create_task(pool.monitor(stop, interval_s=0.01))
    for _ in range(200):  # until the monitor has spent what it may (at most 10 s)
        if spent.used() >= 25:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # it would spend more now if it did not hold back
    stop.set()
    await monitor
    stats = proxy.stats.snapshot()
    assert spent.total == stats["calls_total"] == spent.used()
    # the monitor (head ranking can wait, 2 calls a round) stopped at half the share: 24 calls
    assert stats["calls"]["eth_blockNumber"] == 24 - 3
    assert spent.total == 24
    for client in pool.clients.values():
        await client.close()
    alone = RpcPool([RpcEndpoint(name="stand-in", url=url, rate_limit_rps=1000)])
    budget.configure(100, 0.5)
    stop = asyncio.Event()
    monitor = asyncio.create_task(alone.monitor(stop, interval_s=0.01))
    await asyncio.sleep(0.3)
    stop.set()
    await monitor
    assert budget.process_budget().total == 0 and proxy.stats.snapshot()["calls_total"] == 24
    await alone.close()
