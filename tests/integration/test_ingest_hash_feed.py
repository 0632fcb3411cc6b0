"""Ingest on a node whose pending subscription pushes hashes only (it ignores `true`): each
router swap is fetched by hash and published exactly once, with its full contents.

The node is a real anvil behind a loopback WebSocket relay that strips `true` from
`eth_subscribe newPendingTransactions` (anvil itself honours it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from mev_common.bus import Bus
from mev_ops.devnet.anvil import AnvilNode
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tests.conftest import NatsEndpoint
from tests.integration.test_ingest import (
    CHAIN,
    devnet,
    flow_swaps,
    published_pending,
    rpc,
    wait_blocks,
)
from tests.integration.test_ingest_failover import metric_lines
from tests.support.stack import ServiceProcess, write_config

__all__ = ["devnet"]  # the fixture (test_ingest.py's: this module gets its own anvil)


@pytest.fixture
async def hash_only_ws(devnet: tuple[AnvilNode, Path]) -> AsyncIterator[str]:
    """ws:// URL of a relay to anvil that asks for pending hashes where `true` was asked."""
    upstream = devnet[0].rpc_url.replace("http://", "ws://")

    async def relay(client: ServerConnection) -> None:
        async with connect(upstream) as node:

            async def up() -> None:
                async for frame in client:
                    msg: dict[str, Any] = orjson.loads(frame)
                    if msg.get("method") == "eth_subscribe":
                        msg["params"] = [p for p in msg["params"] if p is not True]
                    await node.send(orjson.dumps(msg).decode())

            async def down() -> None:
                async for frame in node:
                    await client.send(frame)

            tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()

    async with serve(relay, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_hash_only_feed_publishes_every_router_swap_once_in_full(
    devnet: tuple[AnvilNode, Path],
    hash_only_ws: str,
    nats_server: NatsEndpoint,
    bus: Bus,
    tmp_path: Path,
) -> None:
    node, deployment_path = devnet
    deployment = json.loads(deployment_path.read_text())
    endpoint = {"name": "anvil", "url": node.rpc_url, "ws_url": hash_only_ws}
    config = write_config(
        tmp_path,
        nats_server.url,
        CHAIN,
        chain={"rpc_endpoints": [endpoint], "block_time_s": 1},
        contracts={"deployment_file": str(deployment_path)},
    )
    ingest = ServiceProcess("ingest", config, tmp_path / "ingest.log").start()
    try:
        ingest.wait_health(200)
        await wait_blocks(bus, 1)
        _, sent = await flow_swaps(node, deployment, 13, 20.0, 8)
        assert len(sent) == 8
        pending = await published_pending(bus, len(sent))
        # the hashes were fetched (JSON-RPC batches): the relay did strip `true`
        batches = [
            line
            for line in metric_lines(ingest, "mev_bot_rpc_requests_total")
            if 'method="batch"' in line and 'status="ok"' in line
        ]
        assert batches and float(batches[0].split()[-1]) >= 1
    finally:
        ingest.stop()
    assert sorted(p.hash for p in pending) == sorted(sent)
    assert {p.seen_on for p in pending} == {"anvil"}  # the endpoint that returned each one
    for tx in pending:  # the contents are the node's, field for field
        raw = await rpc(node, "eth_getTransactionByHash", [tx.hash])
        assert tx.input == raw["input"]
        assert tx.nonce == int(raw["nonce"], 16)
        assert tx.sender.lower() == raw["from"].lower()
