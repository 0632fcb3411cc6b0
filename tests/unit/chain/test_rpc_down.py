"""Every RPC endpoint down: the pool says so (naming each), and the health check is critical."""

from __future__ import annotations

import asyncio

import pytest
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool
from mev_common.runtime import rpc_check
from mev_common.settings import RpcEndpoint
from mev_ops.nats_server import free_port


def test_all_down_only_when_the_last_call_to_every_endpoint_failed() -> None:
    pool = RpcPool(
        [
            RpcEndpoint(name=name, url=f"http://127.0.0.1:{free_port()}", timeout_s=1)
            for name in ("a", "b")
        ]
    )

    async def run() -> None:
        try:
            assert pool.all_down_reason() is None  # nothing tried yet
            assert rpc_check(pool).ok is True
            with pytest.raises(RpcError):
                await pool.call("eth_blockNumber", [], rounds=1)
            reason = pool.all_down_reason()
            assert reason is not None and reason.startswith("every RPC endpoint is down (a: ")
            assert "; b: " in reason
            check = rpc_check(pool)
            assert (check.ok, check.critical, check.detail) == (False, True, reason)
            await pool.probe_failing()  # still refused: still down
            assert pool.all_down_reason() is not None
            pool.states["b"].consecutive_errors = 0  # one endpoint answered
            assert pool.all_down_reason() is None
        finally:
            await pool.close()

    asyncio.run(run())
