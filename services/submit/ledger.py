"""The ledger: bundles, txs, receipts and outcomes in SQLite, the source of truth for money.

WAL with synchronous=FULL: a row committed here survives a crash, unlike a JetStream ack
(DESIGN §2). Exactly once rests on two rules: a trade tx is written here (state `signed`, with
its raw bytes) before it is broadcast, and a unique index allows one trade tx per bundle, so a
redelivered bundle, a restarted process or a second submitter sharing this file finds the row
and never signs a second trade for it. Outcomes carry a `published` flag: one booked but not yet
published (crash in between) is published at the next start.

Two informational flags (`mark_sent`, `mark_published`) are committed without an fsync of their
own: a kill -9 keeps them like every commit, and a power cut that loses one leaves a state the
ledger already handles (a tx `signed` is in flight as `sent` is; an outcome unpublished is
published again).

Amounts are TEXT of decimal digits (wei exceeds SQLite's 64-bit integers); times are unix s.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from mev_common.ledger_schema import ADDED_COLUMNS as _ADDED_COLUMNS
from mev_common.ledger_schema import MIGRATIONS, SCHEMA
from mev_common.messages import Bundle, Outcome

from services.submit.ledger_chain import ChainRecords
from services.submit.ledger_records import (
    MINED,
    TX_COLUMNS,
    UNRESOLVED,
    PendingPublish,
    Settled,
    TxRecord,
    WriteWatch,
    tx_from_row,
)


def connect(path: str | Path, *, any_thread: bool = False) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=not any_thread)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=10000")
    return db


def hold_lock(db_path: Path) -> int:
    """A shared flock on `<db>.lock` for the ledger's lifetime: scripts/restore.sh takes it
    exclusively, so it refuses while any submit holds the ledger open (and waits for none)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{db_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


class Ledger(ChainRecords):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = hold_lock(self.path)
        self._db = connect(path)
        self._db.executescript(SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")
        self._migrate()
        self.genesis_hash: str | None = None  # set by `bind` / `binding`
        # `resolve_off_loop`'s connection, used under `_writes` only; the loop's fsynced
        # writes take `_writes` too, so they wait on a worker's commit, never on SQLite's busy
        # back-off (sleeps of up to 100 ms)
        self._writes = threading.Lock()
        self._worker_db: sqlite3.Connection | None = None
        self.watch: WriteWatch | None = None  # the safety store's running spend

    def data_version(self) -> int:
        """Moves when another connection commits (the settlement worker, an operator, another
        process), never on this connection's own commits."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _changed(self) -> None:
        if self.watch is not None:
            self.watch.changed()

    def _migrate(self) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
                for sql in steps:
                    self._db.execute(sql)
                self._db.execute(f"PRAGMA user_version = {number}")

    # -- bundles and outcomes ---------------------------------------------------------------
    def _insert_bundle(self, bundle: Bundle, trace: str, seen_ns: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO bundles (id, opportunity_id, strategy, chain_id, block_number, "
            "simulated_profit, profit_token, deadline_block, net_profit_wei, trace, seen_ns, "
            "payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                bundle.id,
                bundle.opportunity_id,
                bundle.strategy,
                bundle.chain_id,
                bundle.block_number,
                str(bundle.simulated_profit),
                bundle.profit_token,
                bundle.deadline_block,
                str(bundle.net_profit_wei),
                trace,
                seen_ns,
                bundle.model_dump_json(),
            ),
        )

    def _insert_outcome(
        self, outcome: Outcome, gas_cost: int, db: sqlite3.Connection | None = None
    ) -> None:
        (db or self._db).execute(
            "INSERT OR REPLACE INTO outcomes (bundle_id, status, tx_hash, block_number, "
            "gas_used, effective_gas_price, realized_profit, reason, payload, gas_cost, "
            "published, booked_unix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (
                outcome.bundle_id,
                outcome.status,
                outcome.tx_hash,
                outcome.block_number,
                outcome.gas_used,
                str(outcome.effective_gas_price),
                str(outcome.realized_profit),
                outcome.reason,
                outcome.model_dump_json(),
                str(gas_cost),
                time.time(),
            ),
        )

    def outcome_for(self, bundle_id: str) -> Outcome | None:
        row = self._db.execute(
            "SELECT payload FROM outcomes WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        return Outcome.model_validate_json(row[0]) if row else None

    def book(
        self, bundle: Bundle, outcome: Outcome, trace: str = "", seen_ns: int = 0, gas_cost: int = 0
    ) -> None:
        """Record a bundle and its final outcome atomically (a bundle that sent nothing)."""
        with self._writes, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            replaced = self._db.execute(
                "SELECT status FROM outcomes WHERE bundle_id = ?", (bundle.id,)
            ).fetchone()
            self._insert_bundle(bundle, trace, seen_ns)
            self._insert_outcome(outcome, gas_cost)
        if outcome.status in MINED or (replaced is not None and replaced[0] in MINED):
            self._changed()

    def bundle(self, bundle_id: str) -> Bundle | None:
        row = self._db.execute("SELECT payload FROM bundles WHERE id = ?", (bundle_id,)).fetchone()
        return Bundle.model_validate_json(row[0]) if row and row[0] else None

    def unpublished(self) -> list[PendingPublish]:
        rows = self._db.execute(
            "SELECT o.payload, b.trace, b.seen_ns, b.reopened, o.corrections FROM outcomes o "
            "JOIN bundles b ON b.id = o.bundle_id WHERE o.published = 0 ORDER BY o.booked_unix"
        ).fetchall()
        return [
            PendingPublish(Outcome.model_validate_json(p), t or "", s or 0, r or 0, c or 0)
            for p, t, s, r, c in rows
        ]

    def mark_published(self, bundle_id: str, corrections: int | None = None) -> None:
        """Without an fsync of its own, as `mark_sent`: lost only to a power cut, the outcome is
        published again at the next start (deduplicated downstream by its message id).
        `corrections`: only if the outcome is still the one published (a correction booked
        while it was published is published next)."""
        sql = "UPDATE outcomes SET published = 1 WHERE bundle_id = ?"
        if corrections is None:
            self._unsynced(sql, (bundle_id,))
        else:
            self._unsynced(f"{sql} AND corrections = ?", (bundle_id, corrections))

    def _unsynced(self, sql: str, params: tuple[Any, ...]) -> None:
        """One informational write committed at synchronous=NORMAL: in the OS (a kill -9 keeps
        it) and synced by the next FULL commit; the connection goes back to FULL."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.execute(sql, params)
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def count_bundles(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0])

    # -- txs ----------------------------------------------------------------------------------
    def record_signed(self, bundle: Bundle, tx: TxRecord, trace: str, seen_ns: int) -> bool:
        """Write the signed tx before it is broadcast. False if this bundle already has a trade
        tx (another delivery or another submitter got here first): then nothing may be sent."""
        try:
            with self._writes, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._insert_bundle(bundle, trace, seen_ns)
                self._insert_tx(tx)
        except sqlite3.IntegrityError:
            return False
        self._signed(tx)
        return True

    def record_cancel(self, tx: TxRecord) -> None:
        with self._writes, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._insert_tx(tx)
        self._signed(tx)

    def _signed(self, tx: TxRecord) -> None:
        if self.watch is None:
            return
        if tx.state in UNRESOLVED:
            self.watch.tx_signed(tx)
        else:  # pragma: no cover - every tx is written `signed`
            self.watch.changed()

    def _insert_tx(self, tx: TxRecord) -> None:
        self._db.execute(
            "INSERT INTO txs (hash, bundle_id, kind, nonce, max_fee_per_gas, "
            "max_priority_fee_per_gas, gas_limit, deadline_block, raw, state, created_at, sender) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tx.hash,
                tx.bundle_id,
                tx.kind,
                tx.nonce,
                str(tx.max_fee_per_gas),
                str(tx.max_priority_fee_per_gas),
                tx.gas_limit,
                tx.deadline_block,
                tx.raw,
                tx.state,
                tx.created_at,
                tx.sender,
            ),
        )

    def mark_sent(self, tx_hash: str) -> None:
        """A node took the tx. Committed without its own fsync (synchronous=NORMAL for this one
        write): it survives a kill -9 like every commit (WAL in the OS), and the next FULL
        commit's fsync covers it. Lost only to a power cut, it leaves the tx `signed`, which
        counts as unresolved and in flight exactly as `sent` does; the fsync it spared sat
        between a broadcast and the next bundle (~0.2-7 ms on the loaded bench disk)."""
        self._unsynced(
            "UPDATE txs SET state = 'sent', sent_at = ? WHERE hash = ? AND state = 'signed'",
            (time.time(), tx_hash),
        )

    def trade_for(self, bundle_id: str) -> TxRecord | None:
        row = self._db.execute(
            f"SELECT {TX_COLUMNS} FROM txs WHERE bundle_id = ? AND kind = 'trade'", (bundle_id,)
        ).fetchone()
        return tx_from_row(row) if row else None

    def txs_of(self, bundle_id: str) -> list[TxRecord]:
        rows = self._db.execute(
            f"SELECT {TX_COLUMNS} FROM txs WHERE bundle_id = ? ORDER BY created_at", (bundle_id,)
        ).fetchall()
        return [tx_from_row(r) for r in rows]

    def unresolved(self) -> list[TxRecord]:
        """Txs signed or sent whose fate is not known yet (tracked until mined or replaced)."""
        rows = self._db.execute(
            f"SELECT {TX_COLUMNS} FROM txs WHERE state IN ('signed', 'sent') ORDER BY nonce"
        ).fetchall()
        return [tx_from_row(r) for r in rows]

    def resolve(self, settled: Settled) -> None:
        """One transaction: the txs' final states, the mined receipt, the bundle's outcome."""
        with self._writes:
            self._resolve(self._db, settled)
        self._changed()

    async def resolve_off_loop(self, settled: Settled) -> None:
        """`resolve` on a worker thread with its own connection: the same transaction, on disk
        (synchronous=FULL) when this returns, but its fsync (1-8 ms, ~30 ms at p95 on the
        loaded bench machine) no longer holds the event loop, where bundles wait to be gated.
        Meanwhile the loop reads the state before it (WAL): the trade still unsettled."""
        try:
            await asyncio.to_thread(self._resolve_in_worker, settled)
        finally:  # (its commit moves `data_version` too: another connection's)
            self._changed()

    def _resolve_in_worker(self, settled: Settled) -> None:
        with self._writes:
            if self._worker_db is None:
                self._worker_db = connect(self.path, any_thread=True)
            self._resolve(self._worker_db, settled)

    def _resolve(self, db: sqlite3.Connection, settled: Settled) -> None:
        now = time.time()
        with db:
            db.execute("BEGIN IMMEDIATE")
            for tx_hash, state in settled.tx_states.items():
                db.execute(
                    "UPDATE txs SET state = ?, resolved_at = ? WHERE hash = ?",
                    (state, now, tx_hash),
                )
            if settled.receipt is not None:
                db.execute(
                    "INSERT OR REPLACE INTO receipts (tx_hash, block_number, block_hash, status, "
                    "gas_used, effective_gas_price, gas_cost, realized_profit, event_profit, "
                    "genesis_hash) VALUES (:tx_hash, :block_number, :block_hash, :status, "
                    ":gas_used, :effective_gas_price, :gas_cost, :realized_profit, "
                    ":event_profit, :genesis_hash)",
                    {**settled.receipt, "genesis_hash": self.genesis_hash},
                )
            self._insert_outcome(settled.outcome, settled.gas_cost, db)

    def close(self) -> None:
        with self._writes:
            if self._worker_db is not None:
                self._worker_db.close()
        self._db.close()
        if self._lock >= 0:
            os.close(self._lock)  # releases the flock
            self._lock = -1
