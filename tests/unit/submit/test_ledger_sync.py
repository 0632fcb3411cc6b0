"""The ledger's fsyncs: the signed trade is committed with synchronous=FULL before its broadcast
(the money-safety write); `mark_sent` and `mark_published`, informational, commit without an
fsync of their own and leave the connection at FULL for the next write. The loss limits' window
spend is read again only after the ledger changed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from itertools import groupby
from pathlib import Path

from services.submit.decide import not_sent
from services.submit.ledger import Ledger
from services.submit.ledger_records import Settled, TxRecord
from services.submit.safety import SafetyStore
from tests.unit.submit import gate_world


def _trade(bundle_id: str) -> TxRecord:
    return TxRecord(
        hash="0x" + "ab" * 32, bundle_id=bundle_id, kind="trade", nonce=3,
        max_fee_per_gas=10**10, max_priority_fee_per_gas=10**9, gas_limit=400_000,
        deadline_block=102, raw="0x02", state="signed", created_at=time.time(),
    )  # fmt: skip


def test_signed_is_fsynced_sent_is_not_and_full_comes_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    bundle = gate_world.bundle()
    level = int(ledger._db.execute("PRAGMA synchronous").fetchone()[0])
    assert level == 2  # FULL
    statements: list[str] = []
    ledger._db.set_trace_callback(statements.append)
    assert ledger.record_signed(bundle, _trade(bundle.id), "t", 1)
    ledger.mark_sent("0x" + "ab" * 32)
    ledger._db.set_trace_callback(None)
    writes = []  # (statement, the synchronous level it ran and committed at)
    for sql, _ in groupby(statements):  # the spend journal's triggers trace as their statement
        if sql.upper().startswith("PRAGMA SYNCHRONOUS="):
            level = {"FULL": 2, "NORMAL": 1}[sql.split("=")[1].strip().upper()]
        elif sql.startswith(("INSERT INTO txs", "UPDATE txs")):
            writes.append((sql.split()[0], level))
    assert writes == [("INSERT", 2), ("UPDATE", 1)]  # the signed tx FULL, `sent` NORMAL
    assert int(ledger._db.execute("PRAGMA synchronous").fetchone()[0]) == 2
    ledger._db.set_trace_callback(statements.append)
    ledger.book(bundle, not_sent(bundle, "test"), "t", 1)
    ledger.mark_published(bundle.id)
    ledger._db.set_trace_callback(None)
    assert [s.split("=")[1].upper() for s in statements if "SYNCHRONOUS=" in s.upper()] == [
        "NORMAL", "FULL", "NORMAL", "FULL"
    ]  # mark_sent's, then mark_published's  # fmt: skip
    assert ledger.unpublished() == []
    probe = sqlite3.connect(tmp_path / "ledger.db")
    row = probe.execute("SELECT state FROM txs WHERE hash = ?", ("0x" + "ab" * 32,)).fetchone()
    assert row == ("sent",)  # committed: another connection (a restarted process) sees it


def test_the_window_spend_is_read_again_only_when_the_ledger_changed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    safety = SafetyStore(tmp_path / "ledger.db")
    bundle = gate_world.bundle()
    statements: list[str] = []
    safety._db.set_trace_callback(statements.append)
    first = safety.spend(gate_world.WETH)
    reads = sum(s.startswith("SELECT") for s in statements)
    assert safety.spend(gate_world.WETH) == first
    assert sum(s.startswith("SELECT") for s in statements) == reads  # not even the window's
    assert ledger.record_signed(bundle, _trade(bundle.id), "t", 1)  # a trade in flight
    assert safety.spend(gate_world.WETH).in_flight_cost == 400_000 * 10**10 != first.in_flight_cost
    assert safety.spend("0x" + "cd" * 20) == safety.spend("0x" + "cd" * 20)


async def test_a_settlement_commits_off_the_event_loop_and_is_on_disk_when_awaited(
    tmp_path: Path,
) -> None:
    """Tracking books a settled trade while bundles wait on the event loop: its commit and
    fsync run on a worker thread. Here another connection holds the write lock, so the commit
    waits on it: the loop still runs (and reads the trade as unsettled); once the lock is
    released the settlement is committed before the await returns, seen by another connection
    (a restarted process). Before, the commit held the loop for its whole fsync."""
    db = tmp_path / "ledger.db"
    ledger = Ledger(db)
    bundle, trade = gate_world.bundle(), _trade(gate_world.bundle().id)
    assert ledger.record_signed(bundle, trade, "t", 1)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    outcome = not_sent(bundle, "replaced")
    settling = asyncio.create_task(
        ledger.resolve_off_loop(Settled(bundle, outcome, {trade.hash: "replaced"}))
    )
    await asyncio.sleep(0.2)
    assert not settling.done()
    assert [t.hash for t in ledger.unresolved()] == [trade.hash]  # the loop runs meanwhile
    blocker.execute("COMMIT")
    await settling
    probe = sqlite3.connect(db)
    assert probe.execute("SELECT state FROM txs").fetchall() == [("replaced",)]
    assert probe.execute("SELECT status FROM outcomes").fetchall() == [("not_sent",)]
    assert ledger.unresolved() == []
    ledger.close()
