"""What the bot did, bundle by bundle, read from submit's SQLite ledger (read-only).

Why not only `pnl_summary`: capture over time needs each outcome's block, and a missed block
needs the outcomes of the bundles priced on it; the totals are cross-checked against
`pnl_summary` by the scenario.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple


class BotTrade(NamedTuple):
    bundle_id: str
    strategy: str
    state_block: int  # the block whose state the bundle was priced on
    status: str | None  # outcome status; None while still in flight
    landed_block: int | None  # block of the mined tx (trade or cancel), if any
    profit: int  # realized, in profit-token units (WETH wei on the devnet)
    gas_wei: int
    profit_token: str
    reason: str
    tx_hash: str | None  # the outcome's tx (the mined one when something was mined)


def read_trades(ledger_path: str | Path) -> list[BotTrade]:
    """Every bundle submit received, with its outcome if booked; [] without a ledger."""
    path = Path(ledger_path)
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = db.execute(
            "SELECT b.id, b.strategy, b.block_number, o.status, o.block_number, "
            "o.realized_profit, o.gas_cost, b.profit_token, o.reason, o.tx_hash FROM bundles b "
            "LEFT JOIN outcomes o ON o.bundle_id = b.id"
        ).fetchall()
    except sqlite3.OperationalError:  # submit never created its tables
        return []
    finally:
        db.close()
    return [
        BotTrade(
            bundle_id=str(bid),
            strategy=str(strategy),
            state_block=int(state_block),
            status=None if status is None else str(status),
            landed_block=None if landed is None else int(landed),
            profit=int(profit or 0),
            gas_wei=int(gas or 0),
            profit_token=str(token or "").lower(),
            reason=str(reason or ""),
            tx_hash=None if tx is None else str(tx),
        )
        for bid, strategy, state_block, status, landed, profit, gas, token, reason, tx in rows
    ]
