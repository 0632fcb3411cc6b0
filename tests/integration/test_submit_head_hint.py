"""Submit takes the chain head at once from a block message (real anvil mining by hand, real
NATS, a real submit process, its RPC calls counted by a proxy in front of anvil).

Why: submit's head came only from its quarter-block RPC poll, which a loaded tracking pass
stretches. A bundle proven on block N that reached submit after N + 1 was mined then passed
the gate's "proven on block N, head is M" rule and landed two blocks after its state (h61:
bench scenario 3 at load ~10, a block trade sent ~0.2 s after its next block, reverted). Here
the poll is 10 s apart (chain.block_time_s 40): block N + 1 is mined and its message published,
then the bundle of block N. Before: sent on a head of N. After: refused, nothing signed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.chain.rpc_blocks import block_from_rpc
from mev_common.messages import Block, Log

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.rpc_counter import CountingProxy
from tests.support.submit_world import (
    CHAIN,
    arbitrage_bundle,
    bot_nonce,
    config_for,
    ledger_rows,
    mine,
    module_devnet,
    outcome_of,
    publish_bundle,
    start_submit,
    tx_states,
    wait_active,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)

devnet = module_devnet("head-hint-devnet")


async def publish_head(bus: Bus, devnet: Devnet, logs: list[Log] | None = None) -> Block:
    """The devnet's head as ingest publishes it, with `logs`."""
    raw = devnet.rpc("eth_getBlockByNumber", ["latest", False])
    block = block_from_rpc(CHAIN, raw).model_copy(update={"logs": logs or []})
    await bus.publish(
        subjects.blocks(CHAIN), block, msg_id=block.hash, trace="b", seen_ns=time.time_ns()
    )
    return block


def receipt_logs(devnet: Devnet, tx_hash: str) -> list[Log]:
    receipt: dict[str, Any] = devnet.rpc("eth_getTransactionReceipt", [tx_hash])
    return [
        Log(address=lg["address"], topics=lg["topics"], data=lg["data"],
            log_index=int(lg["logIndex"], 16), tx_hash=lg["transactionHash"])
        for lg in receipt["logs"]
    ]  # fmt: skip


async def test_a_bundle_of_the_block_before_a_block_message_is_refused_before_the_poll(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(devnet, nats_server.url, tmp_path)
    cfg = yaml.safe_load(config.read_text())
    cfg["chain"]["block_time_s"] = 40  # submit's head poll: every 10 s
    config.write_text(yaml.safe_dump(cfg))
    bundle, _ = arbitrage_bundle(devnet, "late-head", via="USDC")  # proven on head N
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)  # its head read at activation: N
        nonce, executor = bot_nonce(devnet), devnet.executor.address
        weth_before = devnet.balance("WETH", executor)
        assert mine(devnet) == bundle.block_number + 1
        raw = devnet.rpc("eth_getBlockByNumber", ["latest", False])
        block = block_from_rpc(CHAIN, raw)
        await bus.publish(
            subjects.blocks(CHAIN), block, msg_id=block.hash, trace="n1", seen_ns=time.time_ns()
        )
        await asyncio.sleep(1.0)  # far under the poll's 10 s: only the message can have told it
        await publish_bundle(bus, bundle)
        [outcome] = await outcome_of(bus, bundle.id)
        assert outcome.status == "not_sent", outcome
        assert outcome.reason == (
            f"proven on block {bundle.block_number}, head is {bundle.block_number + 1}: "
            "its state is gone"
        )
        mine(devnet)
        # nothing signed, nothing spent: ledger == chain
        assert ledger_rows(tmp_path / "mev-bot.db", "SELECT hash FROM txs") == []
        assert bot_nonce(devnet, "latest") == nonce
        assert devnet.balance("WETH", executor) == weth_before
    finally:
        proc.stop()


async def test_a_bundle_of_the_block_a_message_announced_needs_no_rpc_read_before_its_send(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    """The bundle of block N, published just after N's message, reaches the node with no RPC
    call before its send: head, base fee and hash come from the message. Before, each message
    made submit read the head over RPC (and a bundle that came first read it again). The next
    block's message, showing our trade's logs, settles it at once: no waiting for the poll."""
    proxy = CountingProxy(devnet.node.rpc_url)
    config = config_for(devnet, nats_server.url, tmp_path)
    cfg = yaml.safe_load(config.read_text())
    cfg["chain"]["block_time_s"] = 1200  # submit's head poll: every 300 s, once in this test
    cfg["chain"]["rpc_endpoints"][0]["url"] = proxy.url
    config.write_text(yaml.safe_dump(cfg))
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        await asyncio.sleep(1.0)  # the start's own head read and tracking pass are over
        bundle, profit = arbitrage_bundle(devnet, "from-message", via="USDC")  # mines N
        raw = devnet.rpc("eth_getBlockByNumber", ["latest", False])
        bundle = bundle.model_copy(update={"block_hash": raw["hash"]})
        executor, db = devnet.executor.address, tmp_path / "mev-bot.db"
        weth_before = devnet.balance("WETH", executor)
        before = proxy.methods()
        block = await publish_head(bus, devnet)
        assert block.number == bundle.block_number
        await publish_bundle(bus, bundle)
        await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], 20, "trade sent")
        assert proxy.methods() - before == Counter({"eth_sendRawTransaction": 1})

        mine(devnet)  # our trade lands in N + 1; its message carries its logs
        [tx_hash] = [h for (h,) in ledger_rows(db, "SELECT hash FROM txs")]
        await publish_head(bus, devnet, receipt_logs(devnet, tx_hash))
        [outcome] = await outcome_of(bus, bundle.id, timeout_s=20.0)  # the poll: in 300 s
        assert (outcome.status, outcome.realized_profit) == ("included", profit)
        assert devnet.balance("WETH", executor) - weth_before == profit
    finally:
        proc.stop()
        proxy.stop()
