"""The loss limits' spend after a settlement costs the same on a day of any length: submit asks
for it on its event loop after every settled trade (services/submit/settlement.py), and a read
of the whole day's receipts and outcomes there stalled the loop (44 ms at 6,060 txs)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mev_common.messages import Outcome

from services.submit.ledger import Ledger
from services.submit.ledger_records import Settled, TxRecord
from services.submit.safety import SafetyStore, day_start
from tests.unit.submit import gate_world
from tests.unit.submit.gate_world import WETH

LANE = "0x" + "a1" * 20


def busy_day(ledger: Ledger, txs: int) -> None:
    """`txs` trades settled today (raw rows, one transaction): two in three included, and a
    `not_sent` booking beside each."""
    now = time.time()
    start = day_start(now)
    at = [start + (now - start) * (n + 1) / (txs + 2) for n in range(txs)]
    db = ledger._db
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO bundles (id, opportunity_id, strategy, chain_id, block_number, "
            "simulated_profit, profit_token) VALUES (?, ?, 'cyclic_arbitrage', 31337, 1, '1', ?)",
            [(f"b{n}", f"o{n}", WETH) for n in range(txs)]
            + [(f"n{n}", f"p{n}", WETH) for n in range(txs)],
        )
        db.executemany(
            "INSERT INTO txs (hash, bundle_id, kind, nonce, max_fee_per_gas, "
            "max_priority_fee_per_gas, gas_limit, deadline_block, raw, state, created_at, "
            "resolved_at, sender) VALUES (?, ?, 'trade', ?, '7', '1', 21000, 9, '0x', ?, ?, ?, ?)",
            [
                (f"0x{n:064x}", f"b{n}", n, "mined" if n % 3 else "reverted", at[n], at[n], LANE)
                for n in range(txs)
            ],
        )
        db.executemany(
            "INSERT INTO receipts (tx_hash, block_number, block_hash, status, gas_used, "
            "effective_gas_price, gas_cost, realized_profit) "
            "VALUES (?, ?, '0x', 1, 1, '1', ?, '0')",
            [(f"0x{n:064x}", n, str(10**15 + n)) for n in range(txs)],
        )
        db.executemany(
            "INSERT INTO outcomes (bundle_id, status, gas_used, effective_gas_price, "
            "realized_profit, reason, payload, booked_unix) VALUES (?, ?, 1, '1', ?, '', '{}', ?)",
            [(f"b{n}", "included" if n % 3 else "reverted", str(3 * 10**15), at[n])
             for n in range(txs)]
            + [(f"n{n}", "not_sent", "0", at[n]) for n in range(txs)],
        )  # fmt: skip


def settle_one(ledger: Ledger, nonce: int) -> None:
    """A trade signed and settled the way submit does it (the worker's connection)."""
    bundle = gate_world.bundle(id="bundle:late", opportunity_id="late")
    trade = TxRecord(
        hash="0x" + "ab" * 32, bundle_id=bundle.id, kind="trade", nonce=nonce,
        max_fee_per_gas=10**10, max_priority_fee_per_gas=10**9, gas_limit=400_000,
        deadline_block=110, raw="0x02", state="signed", created_at=time.time(), sender=LANE,
    )  # fmt: skip
    assert ledger.record_signed(bundle, trade, "t", 1)
    outcome = Outcome(
        bundle_id=bundle.id, chain_id=bundle.chain_id, strategy=bundle.strategy,
        status="reverted", tx_hash=trade.hash,
    )  # fmt: skip
    receipt: dict[str, object] = {
        "tx_hash": trade.hash, "block_number": 10**6, "block_hash": "0x" + "11" * 32,
        "status": 0, "gas_used": 21_000, "effective_gas_price": "5", "gas_cost": "105000",
        "realized_profit": "0", "event_profit": None,
    }  # fmt: skip
    settled = Settled(bundle, outcome, {trade.hash: "reverted"}, receipt, 105_000)
    asyncio.run(ledger.resolve_off_loop(settled))


def test_the_spend_after_a_settlement_costs_the_same_on_a_day_of_any_length(
    tmp_path: Path,
) -> None:
    """Its work (SQLite's VM steps on both connections, counted) must not grow with the trades
    settled earlier in the day (it did: every receipt and outcome of the day read again)."""
    steps: list[int] = []
    for txs in (300, 6_000):
        ledger = Ledger(tmp_path / f"{txs}.db")
        busy_day(ledger, txs)
        safety = SafetyStore(tmp_path / f"{txs}.db", ledger)
        before = safety.spend(WETH)
        settle_one(ledger, txs)
        count = [0]

        def step(count: list[int] = count) -> int:
            count[0] += 1
            return 0

        for db in (ledger._db, safety._db):
            db.set_progress_handler(step, 1)
        try:
            after = safety.spend(WETH)
        finally:
            for db in (ledger._db, safety._db):
                db.set_progress_handler(None, 1)
        # exact: the settled trade's gas, one more revert after an included trade
        assert after.gas_spent == before.gas_spent + 105_000
        assert after.native_profit == before.native_profit == txs * 3 * 10**15
        assert (before.consecutive_reverts, after.consecutive_reverts) == (0, 1)
        assert after.in_flight_cost == 0
        steps.append(count[0])
        safety.close()
        ledger.close()
    assert steps[1] == steps[0], steps
