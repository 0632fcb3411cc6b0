"""Reading the ledger: the one read API over submit's SQLite file (schema in
`mev_common.ledger_schema`), for submit's P&L gauges, the dry-run summary and the bench.

Read-only (`mode=ro`): a reader never takes the writer's lock nor creates the file. A missing
file, or one submit never created its tables in, reads as empty. Profit is always the booked
columns (`outcomes.realized_profit`, `outcomes.gas_cost`, `bundles.net_profit_wei`), never text.

Profit is in profit-token units by token (the devnet trades WETH-denominated cycles, so its
WETH entry is wei); gas is always wei of the native coin. Net profit in wei is therefore only
defined for the token that stands for the native coin (WETH): `net_profit_wei(weth)`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mev_common.executor import decode_execute
from mev_common.messages import Bundle

SETTLED = ("included", "reverted", "dropped", "replaced")
MINED = ("included", "reverted")


class LedgerUnreadable(Exception):
    """The file exists but is not a ledger SQLite can read (corrupt, locked past the timeout)."""


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when there is nothing to read yet."""
    if not path.exists():
        yield None
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        yield db if {"bundles", "outcomes", "txs"} <= have else None
    except sqlite3.DatabaseError as exc:
        raise LedgerUnreadable(f"cannot read the ledger {path}: {exc}") from exc
    finally:
        db.close()


def _int(value: object) -> int:
    return 0 if value is None else int(str(value))


# -- bundles with their outcomes ---------------------------------------------------------------
@dataclass(frozen=True)
class LedgerTrade:
    """A bundle submit received, with its booked outcome (status None while in flight)."""

    bundle_id: str
    opportunity_id: str
    strategy: str
    state_block: int  # the block whose state the bundle was priced on
    simulated_profit: int  # simulate's gross, in profit-token units
    net_profit_wei: int  # simulate's proven net of gas at the fee it would pay
    profit_token: str  # lower case; "" if the bundle named none
    payload: str | None  # the Bundle message as booked
    status: str | None
    landed_block: int | None  # block of the mined tx (trade or cancel), if any
    realized_profit: int  # from the receipt, in profit-token units
    gas_cost_wei: int  # gasUsed x effectiveGasPrice of our mined tx(s)
    reason: str
    tx_hash: str | None  # the outcome's tx (the mined one when something was mined)

    @property
    def net(self) -> int:
        """Simulate's proven net for a bundle not mined; realized minus gas paid otherwise."""
        if self.status in MINED:
            return self.realized_profit - self.gas_cost_wei
        return self.net_profit_wei

    def landed_net(self, token: str) -> int:
        """Profit that landed in `token` minus all gas paid; profit in another token is not
        counted (it cannot be netted against gas in wei)."""
        mined = self.status in MINED and self.profit_token == token.lower()
        return (self.realized_profit if mined else 0) - self.gas_cost_wei

    def trade_key(self) -> tuple[object, ...]:
        """What makes two bookings the same trade: the executor call without its min-profit
        floor (which follows the fee); the opportunity id if there is no call."""
        try:
            bundle = Bundle.model_validate_json(self.payload or "")
            call = decode_execute(bytes.fromhex(bundle.data.removeprefix("0x")))
        except ValueError:
            return ("opportunity", self.opportunity_id)
        return (bundle.to, call.hops, call.amount_in, call.flash)


def read_trades(ledger_path: str | Path) -> list[LedgerTrade]:
    """Every bundle, booked ones first in booking order, then those still in flight."""
    with _read_only(Path(ledger_path)) as db:
        if db is None:
            return []
        rows = db.execute(
            "SELECT b.id, b.opportunity_id, b.strategy, b.block_number, b.simulated_profit, "
            "b.net_profit_wei, b.profit_token, b.payload, o.status, o.block_number, "
            "o.realized_profit, o.gas_cost, o.reason, o.tx_hash FROM bundles b "
            "LEFT JOIN outcomes o ON o.bundle_id = b.id "
            "ORDER BY o.bundle_id IS NULL, o.booked_at, o.rowid, b.rowid"
        ).fetchall()
    return [
        LedgerTrade(
            bundle_id=str(r[0]),
            opportunity_id=str(r[1]),
            strategy=str(r[2]),
            state_block=int(r[3]),
            simulated_profit=_int(r[4]),
            net_profit_wei=_int(r[5]),
            profit_token=str(r[6] or "").lower(),
            payload=None if r[7] is None else str(r[7]),
            status=None if r[8] is None else str(r[8]),
            landed_block=None if r[9] is None else int(r[9]),
            realized_profit=_int(r[10]),
            gas_cost_wei=_int(r[11]),
            reason=str(r[12] or ""),
            tx_hash=None if r[13] is None else str(r[13]),
        )
        for r in rows
    ]


def distinct_would_be_sends(trades: list[LedgerTrade]) -> list[LedgerTrade]:
    """The first dry-run booking of each distinct trade. Nothing is sent in a dry run, so the
    same trade stays open and is found again at the next block, possibly by another strategy
    (a backrun at N, a cycle at N+1): it counts once."""
    seen: set[tuple[object, ...]] = set()
    first: list[LedgerTrade] = []
    for t in trades:
        if t.status != "dry_run":
            continue
        key = t.trade_key()
        if key not in seen:
            seen.add(key)
            first.append(t)
    return first


# -- P&L summary -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PnlSummary:
    outcomes: dict[str, int] = field(default_factory=dict)  # count by outcome status
    bundles: int = 0  # bundles received (any outcome or still in flight)
    in_flight: int = 0  # bundles whose trade tx is signed or sent but not settled
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
    ledger_path: str | Path,
    since_unix: float | None = None,
    strategy: str | None = None,
    totals: bool = True,
) -> PnlSummary:
    """Counts by outcome, realized and would-be profit by token, gas spent; only outcomes
    booked at or after `since_unix` and of `strategy`, if given (bundles, in_flight and
    txs_sent are all-time, read only with `totals`: they scan the whole ledger, which grows
    for as long as the bot runs). A missing ledger file is an empty summary."""
    with _read_only(Path(ledger_path)) as db:
        if db is None:
            return PnlSummary()
        since = since_unix if since_unix is not None else float("-inf")
        rows = db.execute(
            "SELECT o.status, o.realized_profit, o.gas_cost, b.profit_token FROM outcomes o "
            "LEFT JOIN bundles b ON b.id = o.bundle_id WHERE o.booked_unix >= ? "
            "AND (? IS NULL OR b.strategy = ?)",
            (since, strategy, strategy),
        ).fetchall()
        bundles = in_flight = sent = 0
        if totals:
            bundles = db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0]
            in_flight = db.execute(
                "SELECT COUNT(*) FROM txs t LEFT JOIN outcomes o ON o.bundle_id = t.bundle_id "
                "WHERE t.kind = 'trade' AND o.bundle_id IS NULL"
            ).fetchone()[0]
            sent = db.execute("SELECT COUNT(*) FROM txs WHERE sent_at IS NOT NULL").fetchone()[0]
    outcomes: dict[str, int] = {}
    realized: dict[str, int] = {}
    would_be: dict[str, int] = {}
    gas = 0
    for status, profit, gas_cost, token in rows:
        outcomes[status] = outcomes.get(status, 0) + 1
        gas += _int(gas_cost)
        key = (token or "").lower()
        if status in MINED and _int(profit):
            realized[key] = realized.get(key, 0) + _int(profit)
        elif status == "dry_run":
            would_be[key] = would_be.get(key, 0) + _int(profit)
    return PnlSummary(
        outcomes=outcomes,
        bundles=int(bundles),
        in_flight=int(in_flight),
        txs_sent=int(sent),
        realized_profit=realized,
        would_be_profit=would_be,
        gas_spent_wei=gas,
    )
