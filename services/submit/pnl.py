"""P&L from the ledger file: one pure read, for `make run`'s status line, the dry-run summary,
submit's own gauges and anyone else (it opens the SQLite file read-only; no NATS, no chain).

Profit is in profit-token units by token (the devnet trades WETH-denominated cycles, so its
WETH entry is wei); gas is always wei of the native coin. Net profit in wei is therefore only
defined for the token that stands for the native coin (WETH): `net_profit_wei(weth)`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

SETTLED = ("included", "reverted", "dropped", "replaced")


@dataclass(frozen=True)
class PnlSummary:
    outcomes: dict[str, int] = field(default_factory=dict)  # count by outcome status
    bundles: int = 0  # bundles received (any outcome or still in flight)
    in_flight: int = 0  # bundles whose trade tx is sent but not settled
    txs_sent: int = 0  # our txs that reached the RPC (trades and cancels)
    realized_profit: dict[str, int] = field(default_factory=dict)  # token -> units, receipts
    would_be_profit: dict[str, int] = field(default_factory=dict)  # token -> units, dry run
    gas_spent_wei: int = 0  # gasUsed x effectiveGasPrice of every mined tx of ours

    def count(self, status: str) -> int:
        return self.outcomes.get(status, 0)

    @property
    def success_rate(self) -> float:
        """Included / settled sends (0 when nothing was sent)."""
        settled = sum(self.count(s) for s in SETTLED)
        return self.count("included") / settled if settled else 0.0

    def net_profit_wei(self, native_token: str | None) -> int:
        """Realized profit in the native-coin token minus all gas, in wei."""
        gross = self.realized_profit.get(native_token.lower(), 0) if native_token else 0
        return gross - self.gas_spent_wei

    def gas_efficiency(self, native_token: str | None) -> float:
        """Gross / (gross + gas): 1.0 means gas cost nothing next to the profit."""
        gross = self.realized_profit.get(native_token.lower(), 0) if native_token else 0
        total = max(gross, 0) + self.gas_spent_wei
        return max(gross, 0) / total if total else 0.0


def pnl_summary(
    ledger_path: str | Path, since_unix: float | None = None, strategy: str | None = None
) -> PnlSummary:
    """Counts by outcome, realized and would-be profit by token, gas spent; only outcomes
    booked at or after `since_unix` and of `strategy`, if given (bundles, in_flight and
    txs_sent are all-time). A missing ledger file is an empty summary."""
    path = Path(ledger_path)
    if not path.exists():
        return PnlSummary()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        since = since_unix if since_unix is not None else float("-inf")
        rows = db.execute(
            "SELECT o.status, o.realized_profit, o.gas_cost, b.profit_token FROM outcomes o "
            "LEFT JOIN bundles b ON b.id = o.bundle_id WHERE o.booked_unix >= ? "
            "AND (? IS NULL OR b.strategy = ?)",
            (since, strategy, strategy),
        ).fetchall()
        outcomes: dict[str, int] = {}
        realized: dict[str, int] = {}
        would_be: dict[str, int] = {}
        gas = 0
        for status, profit, gas_cost, token in rows:
            outcomes[status] = outcomes.get(status, 0) + 1
            gas += int(gas_cost or 0)
            key = (token or "").lower()
            if status in ("included", "reverted") and int(profit or 0):
                realized[key] = realized.get(key, 0) + int(profit)
            elif status == "dry_run":
                would_be[key] = would_be.get(key, 0) + int(profit or 0)
        bundles = db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0]
        in_flight = db.execute(
            "SELECT COUNT(*) FROM txs t LEFT JOIN outcomes o ON o.bundle_id = t.bundle_id "
            "WHERE t.kind = 'trade' AND o.bundle_id IS NULL"
        ).fetchone()[0]
        sent = db.execute("SELECT COUNT(*) FROM txs WHERE sent_at IS NOT NULL").fetchone()[0]
    except sqlite3.OperationalError:  # a file without our tables yet (submit never ran)
        return PnlSummary()
    finally:
        db.close()
    return PnlSummary(
        outcomes=outcomes,
        bundles=int(bundles),
        in_flight=int(in_flight),
        txs_sent=int(sent),
        realized_profit=realized,
        would_be_profit=would_be,
        gas_spent_wei=gas,
    )
