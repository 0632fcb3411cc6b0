"""The loss limits' window spend read from the ledger's tables (services/submit/safety.py): in
full, or only the rows the spend journal names since a running figure was read
(mev_common.ledger_schema, services/submit/running_spend.py).

Both run the same queries, the second restricted to the journaled rows, so a figure kept by
catching up equals a full read's to the wei: a row the journal does not name after the
figure's `seq` has not changed since it was read. Both run inside the caller's read
transaction (one consistent state, the journal's `seq` with it).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from services.submit.running_spend import Key, RunningSpend

# the receipts of txs resolved in the window: gas spent
GAS = (
    "SELECT r.tx_hash, r.gas_cost FROM receipts r JOIN txs t ON t.hash = r.tx_hash "
    "WHERE t.resolved_at >= ?"
)
# outcomes booked in the window whose profit is in the native token
PROFIT = (
    "SELECT o.bundle_id, o.realized_profit FROM outcomes o JOIN bundles b ON b.id = o.bundle_id "
    "WHERE o.booked_unix >= ? AND o.status IN ('included', 'reverted') "
    "AND lower(b.profit_token) = ?"
)
# txs in flight: per nonce of each sending account (lanes share nonce numbers) the worst of
# them counts, the only one of them that can be mined
FLIGHT = (
    "SELECT hash, sender, nonce, gas_limit, max_fee_per_gas FROM txs "
    "WHERE state IN ('signed', 'sent')"
)
MAX_ROWS = 500  # rows to read again above which the window is read in full


def read_full(
    db: sqlite3.Connection, version: int, token: str | None, cleared: float, since: float
) -> RunningSpend:
    try:
        seq = _seq(db)
    except sqlite3.OperationalError:  # a file without the journal: always read in full
        seq = -1
    try:
        gas = {str(h): int(c) for h, c in db.execute(GAS, (since,))}
        profit = {str(b): int(p) for b, p in db.execute(PROFIT, (since, _lower(token)))}
        flight = {str(h): _worst(*row) for h, *row in db.execute(FLIGHT)}
        reverts = revert_streak(db, since)
    except sqlite3.OperationalError:  # the ledger's tables do not exist yet
        return RunningSpend(version, token, cleared, since, -1)
    return RunningSpend(version, token, cleared, since, seq, gas, profit, flight, reverts)


def catch_up(db: sqlite3.Connection, running: RunningSpend) -> bool:
    """Read again the rows journaled since `running` was read, and update it. False (and
    `running` untouched) when the journal cannot say: read the window in full."""
    if running.seq < 0:
        return False
    try:
        seq = _seq(db)
        rows = db.execute(
            "SELECT kind, key FROM spend_journal WHERE seq > ? AND seq <= ?", (running.seq, seq)
        ).fetchall()
        if len(rows) != seq - running.seq:  # pruned, edited or replaced
            return False
        hashes = sorted({key for kind, key in rows if kind == "tx"})
        bundles = sorted({key for kind, key in rows if kind == "outcome"})
        if len(hashes) + len(bundles) > MAX_ROWS or any(k is None for _, k in rows):
            return False
        txs: dict[str, tuple[int | None, tuple[Key, int] | None]] = {}
        if hashes:
            marks = ",".join("?" * len(hashes))
            gas = {h: int(c) for h, c in db.execute(f"{GAS} AND r.tx_hash IN ({marks})",
                                                      (running.since, *hashes))}  # fmt: skip
            flight = {h: _worst(*r) for h, *r in db.execute(f"{FLIGHT} AND hash IN ({marks})",
                                                             hashes)}  # fmt: skip
            txs = {h: (gas.get(h), flight.get(h)) for h in hashes}
        outcomes: dict[str, int | None] = {}
        reverts = None
        if bundles:
            marks = ",".join("?" * len(bundles))
            profit = {
                b: int(p)
                for b, p in db.execute(
                    f"{PROFIT} AND o.bundle_id IN ({marks})",
                    (running.since, _lower(running.native_token), *bundles),
                )
            }
            outcomes = {b: profit.get(b) for b in bundles}
            reverts = revert_streak(db, running.since)
    except sqlite3.OperationalError:
        return False
    running.update(txs, outcomes, reverts, seq)
    return True


def revert_streak(db: sqlite3.Connection, since: float) -> int:
    """Trades reverted on chain since the window's last included one (by booking time): two
    reads of the (status, booked_unix) index, not a walk back over the day's outcomes."""
    (last,) = db.execute(
        "SELECT MAX(booked_unix) FROM outcomes WHERE status = 'included' AND booked_unix >= ?",
        (since,),
    ).fetchone()
    after = "booked_unix >= ?" if last is None else "booked_unix > ?"
    (count,) = db.execute(
        f"SELECT COUNT(*) FROM outcomes WHERE status = 'reverted' AND {after}",
        (since if last is None else last,),
    ).fetchone()
    return int(count)


def _seq(db: sqlite3.Connection) -> int:
    """The journal's last row (raises without the journal)."""
    db.execute("SELECT seq FROM spend_journal LIMIT 0")
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'spend_journal'").fetchone()
    return int(row[0]) if row else 0


def _lower(token: str | None) -> str:
    return (token or "").lower()


def _worst(sender: Any, nonce: Any, gas_limit: Any, max_fee: Any) -> tuple[Key, int]:
    """A tx in flight: its (sender, nonce) and worst case, gas limit x max fee."""
    return (str(sender or "").lower(), int(nonce)), int(gas_limit) * int(max_fee)
