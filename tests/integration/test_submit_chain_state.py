"""Submit's state bound to its chain: reorged receipts, other chains' bundles, another genesis.

A booked receipt whose block leaves the canonical chain (anvil_reorg) is re-opened, re-booked.

Real anvil, real NATS, a real submit process; the reorgs are anvil's own (`anvil_reorg`
depth, txs): one puts our trade back one block later, one drops it. The ledger must end on
the chain's truth, to the wei.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Bundle, Outcome
from mev_common.settings import KeySettings

from services.submit.keys import Signer, load_lane_signers
from services.submit.ledger import Ledger
from services.submit.ledger_records import Settled, TxRecord
from services.submit.pnl import pnl_summary
from tests.conftest import NatsEndpoint
from tests.integration import test_submit
from tests.integration.devnet.conftest import Devnet
from tests.support.stack import ServiceProcess
from tests.support.stream_read import read_until
from tests.support.submit_world import (
    CHAIN,
    GWEI,
    active_submit,
    arbitrage_bundle,
    bot_nonce,
    config_for,
    health,
    ledger_rows,
    mine,
    outcome_of,
    publish_bundle,
    tx_states,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)
devnet = test_submit.devnet  # the same module-scoped anvil fixture, deployed from nothing

BOOKED = (
    "SELECT o.status, o.block_number, o.realized_profit, o.gas_used, r.block_hash, "
    "r.tx_hash, b.reopened FROM outcomes o JOIN bundles b ON b.id = o.bundle_id "
    "LEFT JOIN receipts r ON r.tx_hash = o.tx_hash WHERE o.bundle_id = ?"
)
ORPHANS = "SELECT state, hash FROM txs WHERE kind = 'cancel' ORDER BY nonce"


@pytest.fixture
async def submit(
    devnet: Devnet, nats_server: NatsEndpoint, tmp_path: Path
) -> AsyncIterator[ServiceProcess]:
    """A real submit process on this module's anvil, active (lease held, nonces synced)."""
    async with active_submit(devnet, nats_server.url, tmp_path) as proc:
        yield proc


def booked(db: Path, bundle_id: str) -> list[tuple[Any, ...]]:
    return ledger_rows(db, BOOKED, bundle_id)


async def land(devnet: Devnet, bus: Bus, db: Path, bundle_id: str) -> tuple[Any, int, int]:
    """Send a profitable bundle and mine it: (bundle, its profit, the block it landed in)."""
    bundle, profit = arbitrage_bundle(devnet, bundle_id)
    await publish_bundle(bus, bundle)
    await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="trade sent")
    block = mine(devnet)
    await wait_for(lambda: bool(booked(db, bundle.id)), what="receipt booked")
    [(status, number, *_)] = booked(db, bundle.id)
    assert (status, number) == ("included", block)
    return bundle, profit, block


async def test_a_reorg_that_moves_our_trade_one_block_later_is_rebooked_there(
    devnet: Devnet, submit: ServiceProcess, bus: Bus, tmp_path: Path
) -> None:
    db = tmp_path / "mev-bot.db"
    executor = devnet.executor.address
    before = devnet.balance("WETH", executor)
    bundle, profit, block = await land(devnet, bus, db, "reorg-moved")
    [(trade_hash, raw)] = ledger_rows(
        db, "SELECT hash, raw FROM txs WHERE bundle_id = ?", bundle.id
    )
    old_hash = devnet.w3.eth.get_block(block)["hash"].to_0x_hex()
    mine(devnet)
    # blocks `block` and `block + 1` replaced; our trade goes into the new `block + 1`
    devnet.rpc("anvil_reorg", [2, [[raw, 1]]])
    receipt = devnet.w3.eth.get_transaction_receipt(trade_hash)
    assert receipt["blockNumber"] == block + 1
    mine(devnet)  # a new head: submit re-checks its recent receipts
    new_hash = devnet.w3.eth.get_block(block + 1)["hash"].to_0x_hex()
    await wait_for(lambda: [r[1] for r in booked(db, bundle.id)] == [block + 1], what="re-booked")
    [(status, number, realized, gas_used, block_hash, tx_hash, reopened)] = booked(db, bundle.id)
    assert (status, number, int(realized), tx_hash, reopened) == (
        "included",
        block + 1,
        profit,
        trade_hash,
        1,
    )
    assert block_hash == new_hash != old_hash
    assert gas_used == receipt["gasUsed"]
    assert devnet.balance("WETH", executor) - before == profit  # the chain agrees
    assert tx_states(db, bundle.id) == [("trade", "mined")]
    for _ in range(40):  # the re-booked outcome is published under a new message id
        outcomes = await outcome_of(bus, bundle.id)
        if len(outcomes) == 2:
            break
    assert [(o.status, o.block_number) for o in outcomes] == [
        ("included", block),
        ("included", block + 1),
    ]
    assert "bundle re-opened" in submit.logs()


async def test_a_reorg_that_drops_our_trade_ends_with_the_cancel_the_chain_holds(
    devnet: Devnet, submit: ServiceProcess, bus: Bus, tmp_path: Path
) -> None:
    db = tmp_path / "mev-bot.db"
    executor = devnet.executor.address
    before = devnet.balance("WETH", executor)
    bundle, profit, block = await land(devnet, bus, db, "reorg-dropped")
    assert devnet.balance("WETH", executor) - before == profit
    [(trade_hash,)] = ledger_rows(db, "SELECT hash FROM txs WHERE bundle_id = ?", bundle.id)
    nonce = devnet.w3.eth.get_transaction(trade_hash)["nonce"]
    devnet.rpc("anvil_reorg", [1, []])  # block `block` replaced by an empty one
    assert devnet.rpc("eth_getTransactionReceipt", [trade_hash]) is None
    mine(devnet)  # head = deadline: re-opened, and past its deadline a cancel takes the nonce
    await wait_for(
        lambda: tx_states(db, bundle.id) == [("trade", "sent"), ("cancel", "sent")],
        what="re-opened and cancelled",
    )
    mine(devnet)
    await wait_for(lambda: [r[0] for r in booked(db, bundle.id)] == ["replaced"], what="re-settled")
    [(status, number, realized, gas_used, _, tx_hash, reopened)] = booked(db, bundle.id)
    cancel = devnet.w3.eth.get_transaction_receipt(tx_hash)
    assert (status, number, int(realized), gas_used, reopened) == (
        "replaced",
        cancel["blockNumber"],
        0,
        21_000,
        1,
    )
    assert devnet.w3.eth.get_transaction(tx_hash)["nonce"] == nonce
    assert devnet.rpc("eth_getTransactionReceipt", [trade_hash]) is None
    assert tx_states(db, bundle.id) == [("trade", "replaced"), ("cancel", "mined")]
    # the profit the first receipt booked is gone from the chain and from the ledger
    assert devnet.balance("WETH", executor) == before
    assert ledger_rows(db, "SELECT COUNT(*) FROM receipts WHERE tx_hash = ?", trade_hash) == [(0,)]
    assert block < cancel["blockNumber"]


async def test_bundles_of_another_chain_are_refused_as_stale_and_nothing_is_sent(
    devnet: Devnet, submit: ServiceProcess, bus: Bus, tmp_path: Path
) -> None:
    """Leftovers of an old devnet in the bundle stream: a block number this chain has not
    reached (it used to pass the deadline check as proof of a newer head), or a hash this
    chain does not have at that height."""
    db = tmp_path / "mev-bot.db"
    head = int(devnet.w3.eth.block_number) + 1  # arbitrage_bundle mines one block
    ahead, _ = arbitrage_bundle(
        devnet, "old-chain-ahead", block_number=head + 500, deadline_block=head + 502
    )
    other = "0x" + "ab" * 32
    forked, _ = arbitrage_bundle(devnet, "old-chain-hash", block_hash=other)
    nonce = bot_nonce(devnet)
    for bundle in (ahead, forked):
        await publish_bundle(bus, bundle)
    [a] = await outcome_of(bus, ahead.id)
    [f] = await outcome_of(bus, forked.id)
    assert a.status == "not_sent"
    # (the head named is submit's own view, which may lag the chain by a block)
    assert a.reason.startswith(f"stale: block {head + 500} does not exist on this chain")
    canonical = devnet.w3.eth.get_block(forked.block_number)["hash"].to_0x_hex()
    assert (f.status, f.reason) == (
        "not_sent",
        f"stale: block {forked.block_number} is {canonical} on this chain, the bundle's is {other}",
    )
    assert bot_nonce(devnet) == nonce
    assert ledger_rows(db, "SELECT COUNT(*) FROM txs") == [(0,)]


def test_a_ledger_of_another_chain_instance_refuses_to_start_exit_2(
    devnet: Devnet, nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    """database.on_chain_change: refuse (the default): exit 2 naming both genesis hashes."""
    config = config_for(devnet, nats_server.url, tmp_path)
    old = "0x" + "0d" * 32
    ledger = Ledger(tmp_path / "mev-bot.db")
    ledger.bind(CHAIN, old)
    ledger.close()
    proc = ServiceProcess("submit", config, tmp_path / "submit.log").start()
    try:
        assert proc.wait(timeout_s=60) == 2, proc.logs()
    finally:
        proc.stop()
    genesis = devnet.w3.eth.get_block(0)["hash"].to_0x_hex()
    text = proc.logs()
    assert "refusing to start" in text
    assert old in text and genesis in text and "database.on_chain_change: reset" in text
    reopened = Ledger(tmp_path / "mev-bot.db")
    assert reopened.binding() == (CHAIN, old)  # refused: nothing changed
    reopened.close()


def _seed_orphan(
    ledger: Ledger, signer: Signer, bundle: Bundle, nonce: int, send: bool, devnet: Devnet
) -> str:
    """What a ledger from before cancels waited for their trade's answer holds: the trade
    refused by every node (booked not_sent) while its cancel was sent on its nonce (`send`:
    the cancel really reaches anvil). Returns the cancel's hash."""
    fees = {"type": 2, "chainId": CHAIN, "nonce": nonce, "value": 0, "data": "0x"}
    trade_tx = {
        **fees,
        "to": bundle.to,
        "data": bundle.data,
        "gas": bundle.gas_limit,
        "maxFeePerGas": bundle.max_fee_per_gas,
        "maxPriorityFeePerGas": bundle.max_priority_fee_per_gas,
    }
    raw, tx_hash = signer.sign(trade_tx)
    trade = TxRecord.signed(
        trade_tx,
        raw,
        tx_hash,
        bundle_id=bundle.id,
        kind="trade",
        deadline_block=bundle.deadline_block,
        sender=signer.address,
    )
    assert ledger.record_signed(bundle, trade, bundle.id, 0)
    cancel_tx = {
        **fees,
        "to": signer.address,
        "gas": 21_000,
        "maxFeePerGas": 3 * GWEI,
        "maxPriorityFeePerGas": 2 * GWEI,
    }
    raw, cancel_hash = signer.sign(cancel_tx)
    ledger.record_cancel(
        TxRecord.signed(
            cancel_tx,
            raw,
            cancel_hash,
            bundle_id=bundle.id,
            kind="cancel",
            deadline_block=bundle.deadline_block,
            sender=signer.address,
        )
    )
    if send:
        assert devnet.rpc("eth_sendRawTransaction", ["0x" + raw.hex()]) == cancel_hash
    ledger.mark_sent(cancel_hash)
    refused = Outcome(
        bundle_id=bundle.id,
        chain_id=CHAIN,
        strategy=bundle.strategy,
        status="not_sent",
        reason="refused by every RPC endpoint: underpriced",
    )
    ledger.resolve(Settled(bundle, refused, {trade.hash: "rejected"}))
    return cancel_hash


async def test_a_cancel_left_sent_after_its_refused_trade_is_resolved_against_the_chain(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    """An old ledger's cancel rows that stayed `sent` for ever (their trades refused): one the
    chain mined (its gas booked, from its receipt, to the wei) and one whose nonce another tx
    of ours took (dropped, no gas). Before, tracking skipped both: never resolved, the gas of
    the mined one never booked. The mined one's outcome, published at start without the gas,
    is published again with it (a new message id: the same would be dropped as a duplicate);
    before, the bus kept the outcome without the gas."""
    db = tmp_path / "mev-bot.db"
    signer = load_lane_signers(KeySettings(path=str(devnet.key_path)))[0]
    mined_bundle, _ = arbitrage_bundle(devnet, "orphan-mined")
    dropped_bundle, _ = arbitrage_bundle(devnet, "orphan-dropped", via="DAI")
    nonce = bot_nonce(devnet, "latest")
    assert bot_nonce(devnet) == nonce
    ledger = Ledger(db)
    mined_cancel = _seed_orphan(ledger, signer, mined_bundle, nonce, True, devnet)
    dropped_cancel = _seed_orphan(ledger, signer, dropped_bundle, nonce + 1, False, devnet)
    ledger.close()
    other = devnet.bot().send(signer.address, b"", 21_000)  # ours, not in the ledger
    mine(devnet)
    receipt = devnet.w3.eth.get_transaction_receipt(mined_cancel)
    assert devnet.w3.eth.get_transaction_receipt(other)["status"] == 1
    assert devnet.w3.eth.get_transaction(other)["nonce"] == nonce + 1
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    async with active_submit(devnet, nats_server.url, tmp_path) as proc:
        await wait_for(
            lambda: [r[0] for r in ledger_rows(db, ORPHANS)] == ["mined", "dropped"],
            timeout_s=15,
            what="orphaned cancels resolved",
        )
        assert health(proc)["checks"]["nonces"]["detail"] == {
            "address": signer.address,
            "next": nonce + 2,
            "in_flight": 0,
        }
    assert ledger_rows(db, ORPHANS) == [("mined", mined_cancel), ("dropped", dropped_cancel)]
    assert ledger_rows(db, "SELECT tx_hash, gas_used, gas_cost, block_number FROM receipts") == [
        (mined_cancel, 21_000, str(gas), receipt["blockNumber"])
    ]
    assert ledger_rows(db, "SELECT bundle_id, status, gas_used, gas_cost FROM outcomes") == [
        (mined_bundle.id, "not_sent", 21_000, str(gas)),
        (dropped_bundle.id, "not_sent", 0, "0"),
    ]
    assert pnl_summary(str(db), 0).gas_spent_wei == gas  # the P&L's gas: the chain's
    price = receipt["effectiveGasPrice"]

    def corrected(got: list[Outcome]) -> bool:
        return sum(o.bundle_id == mined_bundle.id for o in got) >= 2

    read = await read_until(bus, subjects.outcomes(CHAIN), Outcome, corrected, 10)
    on_bus = {
        b.id: [o for o in read if o.bundle_id == b.id] for b in (mined_bundle, dropped_bundle)
    }
    assert {k: [(o.status, o.gas_used, o.effective_gas_price) for o in v]
            for k, v in on_bus.items()} == {
        mined_bundle.id: [("not_sent", 0, 0), ("not_sent", 21_000, price)],
        dropped_bundle.id: [("not_sent", 0, 0)],
    }  # fmt: skip
    assert mined_cancel in on_bus[mined_bundle.id][1].reason
