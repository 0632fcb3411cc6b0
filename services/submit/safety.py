"""Safety trips in the ledger file: a tripped limit holds across restarts until the operator
writes the emergency-stop key again (any new revision of it after the trip clears the trip;
the value written then decides whether sends resume).

Its own table in the ledger's SQLite file, created here (the ledger's schema stays the
ledger's), and the window's spend read from the ledger's tables as a running figure
(services/submit/running_spend.py): the ledger's signed txs added as it writes them, any other
change caught up from the spend journal (services/submit/spend_read.py), read in full when the
window moves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.submit.ledger import Ledger, connect
from services.submit.ledger_records import TxRecord
from services.submit.limits import Spend
from services.submit.running_spend import RunningSpend
from services.submit.spend_read import catch_up, read_full

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
    def __init__(self, path: str | Path, ledger: Ledger | None = None) -> None:
        self._db = connect(path)
        self._db.executescript(SCHEMA)
        self._ledger = ledger
        if ledger is not None:
            ledger.watch = self  # its writes keep the running spend (tx_signed, changed)
        self._running: RunningSpend | None = None
        self._stale = False  # read in full: the window moved (a clear)
        self._behind = False  # catch up from the journal: the ledger wrote

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
        self._stale = True
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
        self._stale = True  # a new window starts at the clear
        return current

    # -- the ledger's writes (Ledger.watch) ---------------------------------------------------
    def tx_signed(self, tx: TxRecord) -> None:
        """The ledger committed a signed tx: it is in flight from now on."""
        if self._running is not None:
            cost = tx.gas_limit * tx.max_fee_per_gas
            self._running.add_in_flight(tx.hash, tx.sender, tx.nonce, cost)

    def changed(self) -> None:
        """The ledger committed a write that may move the spend otherwise: catch up."""
        self._behind = True

    # -- the window's spend ------------------------------------------------------------------
    def spend(self, native_token: str | None, now: float | None = None) -> Spend:
        """The window's spend: the running figure, caught up from the journal when the ledger
        wrote or another connection committed, read in full when the window moved (a new UTC
        day, a clear) or another token is asked for."""
        at = time.time() if now is None else now
        version = self._version()
        running = self._running
        if (
            running is None
            or self._stale
            or running.native_token != native_token
            or running.since != max(day_start(at), running.cleared)
        ):
            self._stale = self._behind = False
            running = self._running = self._read(version, native_token, at)
        elif self._behind or running.version != version:
            self._behind = False
            running = self._running = self._catch_up(running, version, at)
        return running.figure

    def _version(self) -> int:
        """The ledger connection's data_version: moved by every other connection's commit,
        never by its own (those tell the store: tx_signed, changed). Without the ledger, this
        connection's: moved by every ledger commit."""
        if self._ledger is not None:
            return self._ledger.data_version()
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _read(self, version: int, native_token: str | None, now: float) -> RunningSpend:
        """Everything in one read transaction; `version` was taken before it, so a commit
        landing meanwhile makes the next call catch up rather than go unseen."""
        with self._db:
            self._db.execute("BEGIN")
            cleared = self._cleared()
            return read_full(self._db, version, native_token, cleared, max(day_start(now), cleared))

    def _catch_up(self, running: RunningSpend, version: int, now: float) -> RunningSpend:
        """The rows changed since `running` was read, in one read transaction; in full if a
        trip was cleared meanwhile (by another connection) or the journal cannot say."""
        with self._db:
            self._db.execute("BEGIN")
            if self._cleared() == running.cleared and catch_up(self._db, running):
                running.version = version
                return running
        return self._read(version, running.native_token, now)

    def _cleared(self) -> float:
        row = self._db.execute("SELECT MAX(cleared_at) FROM safety_trips").fetchone()
        return float(row[0] or 0.0)

    def close(self) -> None:
        self._db.close()
