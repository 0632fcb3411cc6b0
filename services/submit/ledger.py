"""The ledger: bundles, outcomes and P&L in SQLite, the source of truth for money state.

WAL with synchronous=FULL: a row committed here survives a crash, unlike a JetStream ack
(DESIGN §2). The bundle id is the idempotency key: a redelivered bundle finds its row and is
never sent twice; its booked outcome is republished instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mev_common.messages import Bundle, Outcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    id TEXT PRIMARY KEY,
    opportunity_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    chain_id INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    simulated_profit TEXT NOT NULL,
    received_at REAL NOT NULL DEFAULT (julianday('now'))
);
CREATE TABLE IF NOT EXISTS outcomes (
    bundle_id TEXT PRIMARY KEY REFERENCES bundles(id),
    status TEXT NOT NULL,
    tx_hash TEXT,
    block_number INTEGER,
    gas_used INTEGER NOT NULL,
    effective_gas_price TEXT NOT NULL,
    realized_profit TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    booked_at REAL NOT NULL DEFAULT (julianday('now'))
);
"""


class Ledger:
    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def outcome_for(self, bundle_id: str) -> Outcome | None:
        row = self._db.execute(
            "SELECT payload FROM outcomes WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        return Outcome.model_validate_json(row[0]) if row else None

    def book(self, bundle: Bundle, outcome: Outcome) -> None:
        """Record the bundle and its outcome atomically (one transaction)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO bundles (id, opportunity_id, strategy, chain_id, "
                "block_number, simulated_profit) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    bundle.id,
                    bundle.opportunity_id,
                    bundle.strategy,
                    bundle.chain_id,
                    bundle.block_number,
                    str(bundle.simulated_profit),
                ),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO outcomes (bundle_id, status, tx_hash, block_number, "
                "gas_used, effective_gas_price, realized_profit, reason, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )

    def count_bundles(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0])

    def close(self) -> None:
        self._db.close()
