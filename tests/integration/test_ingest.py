"""Ingest against a real anvil devnet and a real nats-server.

Blocks arrive in order without gaps or duplicates (also across a restart), each with exactly
the pool events the chain has; pending swaps to the routers reach the mempool subject; a wrong
chain id makes ingest refuse to run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mev_common import subjects
from mev_common.amm.v3_book import V3_LOG_TOPICS, V3_SWAP_TOPIC
from mev_common.bus import Bus
from mev_common.messages import Block, PendingTx, decode
from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.flow import FlowReport, run_flow
from nats.js.api import DeliverPolicy

from services.ingest.logs import SWAP_TOPIC, SYNC_TOPIC
from tests.conftest import NatsEndpoint
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import ServiceProcess, node_config

CHAIN = 31337


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, Path]]:
    base = tmp_path_factory.mktemp("devnet")
    node, _ = deployed_anvil(
        base, CHAIN, 1, base / "bot.key", base / "deployment.json", block_time=1
    )
    try:
        yield node, base / "deployment.json"
    finally:
        node.stop()


async def rpc(node: AnvilNode, method: str, params: list[Any]) -> Any:
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            node.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
    return reply.json()["result"]


async def stream_messages(bus: Bus, subject: str) -> list[bytes]:
    info = await bus.js.stream_info(
        "BLOCKS" if subject.endswith("blocks") else "MEMPOOL", subjects_filter=subject
    )
    total = int((info.state.subjects or {}).get(subject, 0))
    sub = await bus.js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    try:
        return [(await sub.next_msg(timeout=5)).data for _ in range(total)]
    finally:
        await sub.unsubscribe()


async def wait_blocks(bus: Bus, at_least: int) -> None:
    for _ in range(200):
        info = await bus.js.stream_info("BLOCKS", subjects_filter=subjects.blocks(CHAIN))
        if int((info.state.subjects or {}).get(subjects.blocks(CHAIN), 0)) >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} blocks published")


async def flow_swaps(
    node: AnvilNode, deployment: dict[str, Any], seed: int, seconds: float, swaps: int
) -> tuple[FlowReport, set[str]]:
    """The devnet flow's `swaps` swaps sent to `node` (run in a thread); its report and the
    swaps' hashes, 0x-prefixed."""
    report = await asyncio.to_thread(
        run_flow, node.rpc_url, deployment, seed, seconds, max_swaps=swaps, emit=None
    )
    assert len(report.tx_hashes) == swaps
    return report, {h if h.startswith("0x") else "0x" + h for h in report.tx_hashes}


async def published_pending(bus: Bus, at_least: int) -> list[PendingTx]:
    """The pending txs in the MEMPOOL stream, once it holds `at_least` (5 s at most)."""
    for _ in range(50):
        info = await bus.js.stream_info("MEMPOOL")
        if info.state.messages >= at_least:
            break
        await asyncio.sleep(0.1)
    return [decode(PendingTx, d) for d in await stream_messages(bus, subjects.mempool(CHAIN))]


async def router_txs_in(node: AnvilNode, numbers: range, routers: set[str]) -> set[str]:
    found: set[str] = set()
    for number in numbers:
        block = await rpc(node, "eth_getBlockByNumber", [hex(number), True])
        found |= {t["hash"] for t in block["transactions"] if (t["to"] or "") in routers}
    return found


async def test_blocks_logs_and_pending_swaps_exactly_as_on_chain(
    devnet: tuple[AnvilNode, Path], nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    node, deployment_path = devnet
    deployment = json.loads(deployment_path.read_text())
    routers = {d["router"].lower() for d in deployment["dexes"]} | {
        d["swap_router"].lower() for d in deployment["v3_dexes"]
    }
    config = node_config(tmp_path, nats_server.url, CHAIN, node.rpc_url, deployment_path)
    ingest = ServiceProcess("ingest", config, tmp_path / "ingest.log").start()
    try:
        ingest.wait_health(200)
        await wait_blocks(bus, 1)
        first = int(await rpc(node, "eth_blockNumber", []), 16)
        report, sent = await flow_swaps(node, deployment, 7, 8.0, 12)
        # Router02 (V2) and SwapRouter (V3) swaps alike are published pending
        assert any(intent.fee for intent in report.intents), "the flow sent no V3 swap"
        await asyncio.sleep(1.0)
        last = int(await rpc(node, "eth_blockNumber", []), 16)
        # every router swap mined while ingest ran was published pending, and nothing else
        pending = [
            decode(PendingTx, d) for d in await stream_messages(bus, subjects.mempool(CHAIN))
        ]
        expected = await router_txs_in(node, range(first, last + 1), routers)
        assert expected == sent
        assert {p.hash for p in pending} == expected
        assert len(pending) == len(expected)
        # each names the endpoint it came from: a backrun of it is sent there alone
        assert {p.seen_on for p in pending} == {"anvil"}

        # restart: the blocks mined while ingest is down must be backfilled in order
        ingest.signal(signal.SIGTERM)
        assert ingest.wait() == 0
        await asyncio.sleep(2.5)
        ingest.start().wait_health(200)
        head = int(await rpc(node, "eth_blockNumber", []), 16)
        await asyncio.sleep(1.5)
        blocks = [decode(Block, d) for d in await stream_messages(bus, subjects.blocks(CHAIN))]
        assert blocks[-1].number >= head
    finally:
        ingest.stop()

    numbers = [b.number for b in blocks]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # no gap, no dup
    assert all(b.parent_hash == a.hash for a, b in itertools.pairwise(blocks))
    assert not any(b.reorg for b in blocks)

    chain_logs = await rpc(
        node,
        "eth_getLogs",
        [
            {
                "fromBlock": hex(numbers[0]),
                "toBlock": hex(numbers[-1]),
                "topics": [[SYNC_TOPIC, SWAP_TOPIC, *V3_LOG_TOPICS]],
            }
        ],
    )
    published = [(lg.tx_hash, lg.log_index, lg.topics[0]) for b in blocks for lg in b.logs]
    on_chain = [
        (lg["transactionHash"], int(lg["logIndex"], 16), lg["topics"][0]) for lg in chain_logs
    ]
    assert len(published) == len(on_chain) > 0
    assert sorted(published) == sorted(on_chain)
    assert any(topic == V3_SWAP_TOPIC for _, _, topic in published)  # the flow's V3 swaps


def test_wrong_chain_id_refuses_to_run(
    devnet: tuple[AnvilNode, Path], nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    node, deployment_path = devnet
    config = node_config(tmp_path, nats_server.url, 999, node.rpc_url, deployment_path)
    ingest = ServiceProcess("ingest", config, tmp_path / "ingest.log").start()
    assert ingest.wait(timeout_s=30) == 1
    assert (
        "RPC endpoint 'anvil' serves chain 31337, the config says chain.chain_id 999: "
        "refusing to run" in ingest.logs()
    )


async def test_a_pending_swap_seen_while_its_stream_is_away_is_published_once_it_is_back(
    devnet: tuple[AnvilNode, Path], nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    """At least once: the MEMPOOL stream is gone (as while its leader is re-elected) for longer
    than ingest's publish timeout while swaps arrive; each is stored once it is back. Before,
    a publish that outlived the timeout was dropped silently."""
    node, deployment_path = devnet
    deployment = json.loads(deployment_path.read_text())
    config = node_config(tmp_path, nats_server.url, CHAIN, node.rpc_url, deployment_path)
    cfg = yaml.safe_load(config.read_text())
    cfg["nats"]["connect_timeout_s"] = 1.0  # also the publish timeout: given up after 1 s
    config.write_text(yaml.safe_dump(cfg))
    ingest = ServiceProcess("ingest", config, tmp_path / "ingest.log").start()
    try:
        ingest.wait_health(200)
        await wait_blocks(bus, 1)
        stream = (await bus.js.stream_info("MEMPOOL")).config
        await bus.js.delete_stream("MEMPOOL")
        _, sent = await flow_swaps(node, deployment, 11, 8.0, 3)
        assert len(sent) == 3
        await asyncio.sleep(1.5)  # past the publish timeout of the last swap
        await bus.js.add_stream(stream)
        pending = await published_pending(bus, len(sent))
        assert sorted(p.hash for p in pending) == sorted(sent)
        assert "pending tx not published" not in ingest.logs()
    finally:
        ingest.stop()
