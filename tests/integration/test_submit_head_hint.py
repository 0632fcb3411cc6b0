"""Submit reads the chain head at once when a block message says a newer block is out (real
anvil mining by hand, real NATS, a real submit process).

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
from pathlib import Path

import pytest
import yaml
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import block_from_rpc

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
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
    wait_active,
)

pytestmark = pytest.mark.timeout(120)

devnet = module_devnet("head-hint-devnet")


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
