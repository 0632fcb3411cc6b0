"""Safety trips in the ledger file: a tripped limit holds across restarts until the operator
writes the emergency-stop key again (any new revision of it after the trip clears the trip;
the value written then decides whether sends resume).

Its own table in the ledger's SQLite file, created here (the ledger's schema stays the
ledger's), and the window's spend read from the ledger's tables: given the `Ledger`, a running
figure its own writes keep exact (services/submit/running_spend.py); without, read again
whenever the file changed.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.submit.ledger import Ledger, connect
from services.submit.ledger_records import TxRecord
from services.submit.limits import Spend
from services.submit.running_spend import RunningSpend

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
        self._stale = False

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
            self._running.add_in_flight(tx.sender, tx.nonce, tx.gas_limit * tx.max_fee_per_gas)

    def changed(self) -> None:
        """The ledger committed a write that may move the spend otherwise: read it again."""
        self._stale = True

    # -- the window's spend ------------------------------------------------------------------
    def spend(self, native_token: str | None, now: float | None = None) -> Spend:
        """The window's spend: the running figure, read again only when it went stale, another
        connection committed, the window moved (a new UTC day, a clear) or another token is
        asked for."""
        at = time.time() if now is None else now
        version = self._version()
        running = self._running
        if (
            running is None
            or self._stale
            or running.version != version
            or running.native_token != native_token
            or running.since != max(day_start(at), running.cleared)
        ):
            self._stale = False
            running = self._running = self._read(version, native_token, at)
        return running.figure

    def _version(self) -> int:
        """The ledger connection's data_version: moved by every other connection's commit,
        never by its own (the writes that keep the running figure). Without the ledger, this
        connection's: moved by every ledger commit."""
        if self._ledger is not None:
            return self._ledger.data_version()
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _read(self, version: int, native_token: str | None, now: float) -> RunningSpend:
        """Everything in one read transaction; `version` was taken before it, so a commit
        landing meanwhile makes the next call read again rather than go unseen."""
        with self._db:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT MAX(cleared_at) FROM safety_trips").fetchone()
            cleared = float(row[0] or 0.0)
            since = max(day_start(now), cleared)
            settled, worst = self._read_spend(since, native_token)
        return RunningSpend(version, native_token, cleared, since, settled, worst)

    def _read_spend(
        self, since: float, native_token: str | None
    ) -> tuple[Spend, dict[tuple[str, int], int]]:
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
            # per nonce of each sending account (lanes share nonce numbers): the worst of
            # the txs on it, the only one of them that can be mined
            worst: dict[tuple[str, int], int] = {}
            for sender, nonce, gas_limit, max_fee in self._db.execute(
                "SELECT sender, nonce, gas_limit, max_fee_per_gas FROM txs "
                "WHERE state IN ('signed', 'sent')"
            ):
                key = (str(sender or "").lower(), int(nonce))
                worst[key] = max(worst.get(key, 0), int(gas_limit) * int(max_fee))
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
            return Spend(), {}
        return Spend(gas, profit, 0, reverts), worst

    def close(self) -> None:
        self._db.close()
