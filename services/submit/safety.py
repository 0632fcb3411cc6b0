"""Safety trips in the ledger file: a tripped limit holds across restarts until the operator
writes the emergency-stop key again (any new revision of it after the trip clears the trip;
the value written then decides whether sends resume).

Its own table in the ledger's SQLite file, created here (the ledger's schema stays the
ledger's), and the window's spend read from the ledger's tables.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.submit.ledger import connect
from services.submit.limits import Spend

SCHEMA = """
CREATE TABLE IF NOT EXISTS safety_trips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reason TEXT NOT NULL,
    tripped_at REAL NOT NULL,
    control_revision INTEGER NOT NULL,
    cleared_at REAL,
    cleared_revision INTEGER
);
"""


@dataclass(frozen=True)
class Trip:
    reason: str
    tripped_at: float
    control_revision: int  # the emergency_stop key's revision when it tripped


def day_start(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


class SafetyStore:
    def __init__(self, path: str | Path) -> None:
        self._db = connect(path)
        self._db.executescript(SCHEMA)
        self._spent: tuple[tuple[int, float, str | None], Spend] | None = None

    def active(self) -> Trip | None:
        row = self._db.execute(
            "SELECT reason, tripped_at, control_revision FROM safety_trips "
            "WHERE cleared_at IS NULL ORDER BY id LIMIT 1"
        ).fetchone()
        return Trip(str(row[0]), float(row[1]), int(row[2])) if row else None

    def trip(self, reason: str, control_revision: int, now: float | None = None) -> Trip:
        """Record a trip (the first active one wins: its reason is what the operator sees)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            current = self.active()
            if current is not None:
                return current
            at = time.time() if now is None else now
            self._db.execute(
                "INSERT INTO safety_trips (reason, tripped_at, control_revision) VALUES (?, ?, ?)",
                (reason, at, control_revision),
            )
        return Trip(reason, at, control_revision)

    def clear_if_rewritten(self, revision: int, now: float | None = None) -> Trip | None:
        """The operator wrote emergency_stop at `revision`: clear a trip older than that write.
        Returns the cleared trip, if any."""
        current = self.active()
        if current is None or revision <= current.control_revision:
            return None
        self._db.execute(
            "UPDATE safety_trips SET cleared_at = ?, cleared_revision = ? WHERE cleared_at IS NULL",
            (time.time() if now is None else now, revision),
        )
        return current

    def window_start(self, now: float) -> float:
        """The later of the UTC day's start and the last clear."""
        row = self._db.execute("SELECT MAX(cleared_at) FROM safety_trips").fetchone()
        return max(day_start(now), float(row[0] or 0.0))

    def spend(self, native_token: str | None, now: float | None = None) -> Spend:
        """The window's spend, read again only when the ledger changed: the gate asks for it on
        every bundle (twice on a trader's lane), and its scans grow with the day's trades.
        `data_version` changes whenever another connection (the ledger's) commits."""
        since = self.window_start(time.time() if now is None else now)
        key = (int(self._db.execute("PRAGMA data_version").fetchone()[0]), since, native_token)
        if self._spent is not None and self._spent[0] == key:
            return self._spent[1]
        spent = self._read_spend(since, native_token)
        self._spent = (key, spent)
        return spent

    def _read_spend(self, since: float, native_token: str | None) -> Spend:
        try:
            gas = sum(
                int(c)
                for (c,) in self._db.execute(
                    "SELECT r.gas_cost FROM receipts r JOIN txs t ON t.hash = r.tx_hash "
                    "WHERE t.resolved_at >= ?",
                    (since,),
                )
            )
            profit = sum(
                int(p)
                for (p,) in self._db.execute(
                    "SELECT o.realized_profit FROM outcomes o JOIN bundles b ON b.id = o.bundle_id"
                    " WHERE o.booked_unix >= ? AND o.status IN ('included', 'reverted')"
                    " AND lower(b.profit_token) = ?",
                    (since, (native_token or "").lower()),
                )
            )
            worst: dict[int, int] = {}
            for nonce, gas_limit, max_fee in self._db.execute(
                "SELECT nonce, gas_limit, max_fee_per_gas FROM txs "
                "WHERE state IN ('signed', 'sent')"
            ):
                worst[nonce] = max(worst.get(nonce, 0), int(gas_limit) * int(max_fee))
            reverts = 0
            for (status,) in self._db.execute(
                "SELECT status FROM outcomes WHERE booked_unix >= ? "
                "AND status IN ('included', 'reverted') ORDER BY booked_unix DESC",
                (since,),
            ):
                if status != "reverted":
                    break
                reverts += 1
        except sqlite3.OperationalError:  # the ledger's tables do not exist yet
            return Spend()
        return Spend(gas, profit, sum(worst.values()), reverts)

    def close(self) -> None:
        self._db.close()
