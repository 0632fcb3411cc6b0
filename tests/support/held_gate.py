"""A real submit with one trade's broadcast held (HoldingRelay) and two more bundles pulled and
waiting for the gate: the moment a stop (SIGTERM, emergency stop) finds work on both sides of
the gate. Three trades through disjoint pools, each with its exact profit; the SIGTERM case run
to its end by the next submit (`handed_back_then_landed`)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Bundle
from mev_common.settings import load_settings

from tests.integration.devnet.conftest import Devnet
from tests.support.holding_relay import HoldingRelay, holding_relay
from tests.support.stack import ServiceProcess, write_config
from tests.support.submit_world import (
    CHAIN,
    WETH,
    arbitrage_bundle,
    mine,
    outcome_of,
    publish_bundle,
    start_submit,
    tx_states,
    wait_active,
    wait_for,
)


@pytest.fixture(name="relay")
def relay_fixture(devnet: Devnet) -> Iterator[HoldingRelay]:
    """The relay in front of the module's anvil (a module uses it as `relay = relay_fixture`)."""
    with holding_relay(devnet.node.rpc_url) as server:
        yield server


def relay_config(
    tmp_path: Path,
    nats_url: str,
    devnet: Devnet,
    relay: HoldingRelay,
    lanes: int,
    **sections: dict[str, Any],
) -> Path:
    """Submit's config: its one RPC endpoint is the relay in front of the module's anvil."""
    return write_config(
        tmp_path,
        nats_url,
        CHAIN,
        chain={"rpc_endpoints": [{"name": "anvil", "url": relay.url}], "block_time_s": 1},
        contracts={"deployment_file": str(devnet.deployment_path)},
        keys={"path": str(devnet.key_path), "lanes": lanes},
        **sections,
    )


def three_bundles(devnet: Devnet, prefix: str) -> list[tuple[Bundle, int]]:
    """Three trades through disjoint pools (WETH via USDC, DAI, USDT), each with its exact
    profit, proven at one head. The user who unbalances the pools wraps the WETH it swaps
    first (60 each: a module's tests together swap more than its funding)."""
    weth = devnet.deployment["tokens"]["WETH"]["address"]
    deposit = bytes.fromhex("d0e30db0")  # WETH9's deposit()
    wrap = devnet.user(1).send(weth, deposit, 100_000, value=180 * WETH)
    mine(devnet)
    assert devnet.w3.eth.get_transaction_receipt(wrap)["status"] == 1
    built = [arbitrage_bundle(devnet, f"{prefix}-{v}", via=v) for v in ("USDC", "DAI", "USDT")]
    last = built[-1][0]
    at = {"block_number": last.block_number, "deadline_block": last.deadline_block}
    return [(b.model_copy(update=at), profit) for b, profit in built]


async def one_sent_two_pulled(
    proc: ServiceProcess, config: Path, bus: Bus, relay: HoldingRelay, built: list[Any]
) -> None:
    """The first bundle's broadcast held by the relay, the other two pulled by submit and
    waiting for the gate."""
    relay.hold_s = 4.5  # what the test does meanwhile fits in the hold
    durable = subjects.consumer_specs(load_settings(config))["submit"].durable
    await wait_active(proc)
    await publish_bundle(bus, built[0][0])
    await wait_for(lambda: ("send", 0) in relay.events, what="the held broadcast")
    for bundle, _ in built[1:]:
        await publish_bundle(bus, bundle)
    pulled = 0
    for _ in range(200):  # all three in submit: one on the wire, two before the gate
        pulled = (await bus.js.consumer_info("BUNDLES", durable)).num_ack_pending
        if pulled == 3:
            break
        await asyncio.sleep(0.02)
    assert pulled == 3


async def handed_back_then_landed(
    devnet: Devnet, bus: Bus, relay: HoldingRelay, config: Path, prefix: str
) -> list[Bundle]:
    """SIGTERM while a trade's broadcast is held and two bundles wait for the gate: the trade
    finishes, the two are never signed by the stopping submit; the next submit (same config,
    same ledger) gates and sends them; each lands once, the ledger matching the chain to the
    wei. Returns the three bundles; the processes' log is `submit.log` beside `config`."""
    tmp, owner = config.parent, devnet.deployment["bot"]
    db, log = tmp / "mev-bot.db", tmp / "submit.log"
    built = three_bundles(devnet, prefix)
    bundles = [b for b, _ in built]
    first, second, third = bundles
    count = devnet.w3.eth.get_transaction_count(owner)
    executor = devnet.executor.address
    before = devnet.balance("WETH", executor)
    proc = start_submit(config, tmp)
    try:
        await one_sent_two_pulled(proc, config, bus, relay, built)
        proc.signal(signal.SIGTERM)
        await wait_for(lambda: "stopping: finishing in-flight work" in log.read_text(), 3)
        relay.second.set()  # the held answer comes back while submit stops
        assert proc.wait(timeout_s=20) == 0
        assert relay.sends() == [("send", 0)]  # nothing signed or sent after the stop
        with sqlite3.connect(db) as conn:
            txs = conn.execute("SELECT bundle_id, nonce, state FROM txs").fetchall()
            booked = conn.execute("SELECT bundle_id FROM outcomes").fetchall()
        assert (txs, booked) == ([(first.id, count, "sent")], [])  # the two: never signed

        proc = start_submit(config, tmp)  # the two reach this one and are gated
        await wait_active(proc)
        for b in (second, third):
            await wait_for(lambda b=b: tx_states(db, b.id) == [("trade", "sent")], what=b.id)
        mined_at = mine(devnet)
        outcomes = {b.id: await outcome_of(bus, b.id) for b in bundles}
        assert {k: [(o.status, o.block_number, o.realized_profit) for o in v]
                for k, v in outcomes.items()} == {
            b.id: [("included", mined_at, profit)] for b, profit in built
        }  # fmt: skip
        total = sum(profit for _, profit in built)
        assert devnet.balance("WETH", executor) - before == total
        with sqlite3.connect(db) as conn:
            txs = conn.execute("SELECT bundle_id, nonce, state FROM txs").fetchall()
        assert sorted(txs, key=lambda t: t[1]) == [
            (first.id, count, "mined"),
            (second.id, count + 1, "mined"),
            (third.id, count + 2, "mined"),
        ]
        assert devnet.w3.eth.get_transaction_count(owner) == count + 3
        sent = [log.read_text().count(f'"msg":"tx sent","bundle":"{b.id}"') for b in bundles]
        assert sent == [1, 1, 1]  # each sent once, by one process or the other
    finally:
        proc.stop()
    return bundles
