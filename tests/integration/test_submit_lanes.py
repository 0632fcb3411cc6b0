"""Nonce lanes on real anvil, real NATS and a real submit process (mining by hand).

A block trade of ours bidding 1 gwei is unsettled; a second trade through other pools bids
3 gwei. On one key it would take the next nonce and land behind the cheaper one (and behind
every tx bidding between), so submit refused it ("our unsettled trade ... bids ... <"). With
`keys.lanes: 2` it goes out on lane 1 (a trader key the owner authorized with setTrader), and
both land in the next block, each profit booked to the wei, and each receipt's gas is the gas
submit booked for it: the owner's as simulate measures it, a trader's exactly TRADER_EXTRA_GAS
more (its net that much gas at the fee cap less).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mev_common.bus import Bus
from mev_common.executor import TRADER_EXTRA_GAS
from mev_common.messages import Bundle
from mev_common.settings import KeySettings
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.sender import Sender

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.submit_world import (
    CHAIN,
    GWEI,
    add_lane,
    arbitrage_bundle,
    config_for,
    health,
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
MEV_BOT = str(Path(sys.executable).parent / "mev-bot")


devnet = module_devnet("lanes-devnet")


def owner_gas(devnet: Devnet, bundle: Bundle, at: int) -> int:
    """The gas `bundle` uses sent from the owner (as simulate runs it) in a block at time `at`,
    on the chain as it is; the chain is left as it was."""
    snapshot = devnet.rpc("evm_snapshot", [])
    devnet.rpc("evm_setNextBlockTimestamp", [at])
    assert bundle.to is not None
    tx = devnet.bot().send(bundle.to, bundle.data, bundle.gas_limit)
    mine(devnet)
    receipt = devnet.w3.eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1
    assert devnet.rpc("evm_revert", [snapshot]) is True
    return int(receipt["gasUsed"])


def booked(db: Path, bundle_id: str) -> Bundle:
    """The bundle as the ledger booked it (what submit said the trade would use and net)."""
    with sqlite3.connect(db) as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM bundles WHERE id = ?", (bundle_id,)
        ).fetchone()
    return Bundle(**json.loads(payload))


async def test_a_backrun_bidding_above_our_unsettled_trade_goes_out_on_another_lane(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    owner = devnet.deployment["bot"]
    lane1 = add_lane(devnet, 1)
    config = config_for(devnet, nats_server.url, tmp_path, lanes=2)
    db = tmp_path / "mev-bot.db"
    cheap, cheap_profit = arbitrage_bundle(
        devnet, "block-trade", via="USDC", max_priority_fee_per_gas=GWEI
    )
    rich, rich_profit = arbitrage_bundle(
        devnet, "backrun", via="DAI", max_priority_fee_per_gas=3 * GWEI
    )
    # rich's set-up mined a block (DAI pools only): cheap is as proven at the new head, which
    # submit requires of every bundle
    cheap = cheap.model_copy(
        update={"block_number": rich.block_number, "deadline_block": rich.deadline_block}
    )
    at = devnet.w3.eth.get_block("latest")["timestamp"] + 12  # the block both land in
    gas = {b.id: owner_gas(devnet, b, at) for b in (cheap, rich)}  # what simulate would say
    cheap, rich = (b.model_copy(update={"simulated_gas_used": gas[b.id]}) for b in (cheap, rich))
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        lanes = health(proc)["checks"]["nonces"]["detail"]
        assert [lane["in_flight"] for lane in lanes] == [0, 0]
        assert [lane["address"] for lane in lanes] == [owner, lane1]  # addresses, never keys
        executor = devnet.executor.address
        before = devnet.balance("WETH", executor)
        await publish_bundle(bus, cheap)
        await wait_for(lambda: tx_states(db, cheap.id) == [("trade", "sent")], what="cheap sent")
        await publish_bundle(bus, rich)  # before: refused, the cheap trade unsettled
        await wait_for(lambda: tx_states(db, rich.id) == [("trade", "sent")], what="rich sent")
        senders = dict(
            ledger_rows(db, "SELECT bundle_id, sender FROM txs WHERE kind = 'trade'")  # type: ignore[arg-type]
        )
        assert senders == {cheap.id: owner, rich.id: lane1}
        devnet.rpc("evm_setNextBlockTimestamp", [at])
        mined_at = mine(devnet)
        outcomes = {b.id: (await outcome_of(bus, b.id))[0] for b in (cheap, rich)}
        assert {o.status for o in outcomes.values()} == {"included"}
        assert {o.block_number for o in outcomes.values()} == {mined_at}
        assert outcomes[cheap.id].realized_profit == cheap_profit
        assert outcomes[rich.id].realized_profit == rich_profit
        assert devnet.balance("WETH", executor) - before == cheap_profit + rich_profit
        receipts = {
            k: devnet.w3.eth.get_transaction_receipt(o.tx_hash) for k, o in outcomes.items()
        }
        assert receipts[cheap.id]["from"] == owner
        said = {b.id: booked(db, b.id) for b in (cheap, rich)}
        assert said[cheap.id] == cheap  # lane 0: as simulate ran it
        assert said[rich.id].simulated_gas_used == gas[rich.id] + TRADER_EXTRA_GAS
        extra_cost = TRADER_EXTRA_GAS * rich.max_fee_per_gas
        assert said[rich.id].net_profit_wei == rich.net_profit_wei - extra_cost
        assert said[rich.id].gas_limit == rich.gas_limit + TRADER_EXTRA_GAS
        for b in (cheap, rich):
            assert receipts[b.id]["gasUsed"] == said[b.id].simulated_gas_used
        tx = devnet.w3.eth.get_transaction(outcomes[rich.id].tx_hash)
        assert tx["gas"] == rich.gas_limit + TRADER_EXTRA_GAS
        assert receipts[rich.id]["from"] == lane1
        # fee order: the richer trade first, on its own nonce sequence (lane 1's first tx)
        assert receipts[rich.id]["transactionIndex"] < receipts[cheap.id]["transactionIndex"]
        assert devnet.w3.eth.get_transaction(outcomes[rich.id].tx_hash)["nonce"] == 0
        await wait_for(
            lambda: (
                [lane["in_flight"] for lane in health(proc)["checks"]["nonces"]["detail"]] == [0, 0]
            ),
            what="both lanes settled",
        )
    finally:
        proc.stop()


async def test_reset_nonce_resyncs_every_lane(
    devnet: Devnet, nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    """Each lane's key sends behind submit's back (an operator's manual tx): submit's sequences
    are behind the chain until `mev-bot --reset-nonce`, which submit acknowledges after
    reading every lane's count again."""
    lane1 = add_lane(devnet, 1)
    config = config_for(devnet, nats_server.url, tmp_path, lanes=2)
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        before = [lane["next"] for lane in health(proc)["checks"]["nonces"]["detail"]]
        lane_key = load_or_create_key(Path(KeySettings(path=str(devnet.key_path)).lane_path(1)))
        senders = [devnet.bot(), Sender(devnet.w3, lane_key, CHAIN)]
        assert senders[1].address == lane1
        sent = [s.send(s.address, b"", 21_000) for s in senders for _ in range(2 + len(senders))]
        mine(devnet)
        assert all(devnet.w3.eth.get_transaction_receipt(tx)["status"] == 1 for tx in sent)
        chain = [devnet.w3.eth.get_transaction_count(s.address) for s in senders]
        assert chain == [n + 2 + len(senders) for n in before]
        assert [lane["next"] for lane in health(proc)["checks"]["nonces"]["detail"]] == before
        reset = [MEV_BOT, "--config", str(config), "--reset-nonce"]
        out = await asyncio.to_thread(
            subprocess.run, reset, capture_output=True, text=True, check=False, timeout=60
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "acknowledged by submit" in out.stdout
        assert [lane["next"] for lane in health(proc)["checks"]["nonces"]["detail"]] == chain
    finally:
        proc.stop()
