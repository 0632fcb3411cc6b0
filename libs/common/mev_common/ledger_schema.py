"""The ledger's schema: submit writes these tables (services/submit/ledger.py), and every
reader (P&L, dry-run summary, bench) reads them through `mev_common.ledger_view`.

Why here and not in submit: the readers run outside submit (operator tools, bench) and must
not import a service; one definition of the tables keeps writer and readers in step.
An older file is brought up to date on open: `ADDED_COLUMNS` (added if missing), then
`MIGRATIONS` in order (`PRAGMA user_version` counts those applied). submit's safety trips
(services/submit/safety.py) keep their own table in the same file.
Amounts are TEXT of decimal digits (wei exceeds SQLite's 64-bit integers); times are unix s,
except the `*_at` julianday defaults of the first schema.
"""

from __future__ import annotations

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
CREATE TABLE IF NOT EXISTS txs (
    hash TEXT PRIMARY KEY,
    bundle_id TEXT NOT NULL REFERENCES bundles(id),
    kind TEXT NOT NULL CHECK (kind IN ('trade', 'cancel')),
    nonce INTEGER NOT NULL,
    max_fee_per_gas TEXT NOT NULL,
    max_priority_fee_per_gas TEXT NOT NULL,
    gas_limit INTEGER NOT NULL,
    deadline_block INTEGER NOT NULL,
    raw TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL,
    resolved_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS txs_one_trade_per_bundle ON txs(bundle_id) WHERE kind = 'trade';
CREATE INDEX IF NOT EXISTS txs_state ON txs(state);
CREATE TABLE IF NOT EXISTS receipts (
    tx_hash TEXT PRIMARY KEY REFERENCES txs(hash),
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    gas_used INTEGER NOT NULL,
    effective_gas_price TEXT NOT NULL,
    gas_cost TEXT NOT NULL,
    realized_profit TEXT NOT NULL,
    event_profit TEXT
);
"""

# Columns added after the first schema; an older file gets them on open.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "bundles": {
        "profit_token": "TEXT",
        "deadline_block": "INTEGER NOT NULL DEFAULT 0",
        "net_profit_wei": "TEXT NOT NULL DEFAULT '0'",
        "trace": "TEXT NOT NULL DEFAULT ''",
        "seen_ns": "INTEGER NOT NULL DEFAULT 0",
        "payload": "TEXT",
    },
    "outcomes": {
        "gas_cost": "TEXT NOT NULL DEFAULT '0'",
        "published": "INTEGER NOT NULL DEFAULT 0",
        "booked_unix": "REAL NOT NULL DEFAULT 0",
        # times the booked outcome was corrected (a mined orphan cancel's gas,
        # services/submit/orphan_cancels.py): each correction is published under a new id
        "corrections": "INTEGER NOT NULL DEFAULT 0",
    },
    # the address that signed the tx (nonce lanes, keys.lanes); '' in older rows: the one key
    # there was, lane 0
    "txs": {"sender": "TEXT NOT NULL DEFAULT ''"},
}

# The spend journal: which rows the loss limits' spend reads (services/submit/spend_read.py)
# changed, journaled by triggers, so by every connection and process that writes the file. A
# running figure that read the window up to `seq` N is made exact again by reading only the
# rows journaled after N: 'tx' keys a tx hash (the tx's row and its receipt's), 'outcome' a
# bundle id (its outcome's row and its bundle's profit token). A change to a column the spend
# does not read journals nothing (`sent`, `published`, a tx's state moving within in-flight).
# The last JOURNAL_KEEP rows are kept: a reader further behind reads the window in full.
JOURNAL_KEEP = 10_000
_READ: dict[str, tuple[str, str, tuple[str, ...]]] = {  # table: kind, key column, columns read
    "txs": ("tx", "hash", ("sender", "nonce", "gas_limit", "max_fee_per_gas", "resolved_at")),
    "receipts": ("tx", "tx_hash", ("gas_cost",)),
    "outcomes": ("outcome", "bundle_id", ("status", "booked_unix", "realized_profit")),
    "bundles": ("outcome", "id", ("profit_token",)),
}


def _journal_triggers() -> list[str]:
    def put(kind: str, key: str) -> str:
        return f"INSERT INTO spend_journal (kind, key) VALUES ('{kind}', {key});"

    triggers = [
        "CREATE TRIGGER IF NOT EXISTS spend_journal_keep AFTER INSERT ON spend_journal BEGIN "
        f"DELETE FROM spend_journal WHERE seq <= NEW.seq - {JOURNAL_KEEP}; END"
    ]
    for table, (kind, key, columns) in _READ.items():
        moved = [f"OLD.{c} IS NOT NEW.{c}" for c in (key, *columns)]
        if table == "txs":  # in flight or not
            flight = "state IN ('signed', 'sent')"
            moved.append(f"(OLD.{flight}) IS NOT (NEW.{flight})")
        triggers += [
            f"CREATE TRIGGER IF NOT EXISTS spend_journal_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {put(kind, f'NEW.{key}')} END",
            f"CREATE TRIGGER IF NOT EXISTS spend_journal_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {put(kind, f'OLD.{key}')} END",
            f"CREATE TRIGGER IF NOT EXISTS spend_journal_{table}_update AFTER UPDATE ON {table} "
            f"WHEN {' OR '.join(moved)} BEGIN {put(kind, f'OLD.{key}')} "
            f"INSERT INTO spend_journal (kind, key) SELECT '{kind}', NEW.{key} "
            f"WHERE NEW.{key} IS NOT OLD.{key}; END",
        ]
    return triggers


# Explicit migrations, in order; `PRAGMA user_version` counts those applied to a file.
# 1: the chain the ledger belongs to (id and genesis hash), receipts tagged with their chain's
#    genesis (only this chain's receipts are re-checked for reorgs), a re-open count per bundle
#    (a re-booked outcome is published under a new message id).
# 2: indexes for the loss limits' window reads (services/submit/safety.py: txs resolved and
#    outcomes booked since a time) and the unpublished-outcome scan at start: without them each
#    read scanned the whole day's rows.
# 3: an index on the receipts' block number for the reorg check's read of the receipts a reorg
#    could still take away (services/submit/reorg.py, on every new head, on submit's event
#    loop): without it each head scanned every receipt ever booked (~3 ms at 22,000).
# 4: the spend journal (below) and an index for the loss limits' revert streak.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS chain_binding (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "chain_id INTEGER NOT NULL, genesis_hash TEXT NOT NULL, bound_at REAL NOT NULL)",
        "ALTER TABLE receipts ADD COLUMN genesis_hash TEXT",
        "ALTER TABLE bundles ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "CREATE INDEX IF NOT EXISTS txs_resolved_at ON txs(resolved_at)",
        "CREATE INDEX IF NOT EXISTS outcomes_booked_unix ON outcomes(booked_unix)",
        "CREATE INDEX IF NOT EXISTS outcomes_unpublished ON outcomes(published) "
        "WHERE published = 0",
    ),
    ("CREATE INDEX IF NOT EXISTS receipts_block_number ON receipts(block_number)",),
    (
        "CREATE TABLE IF NOT EXISTS spend_journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "kind TEXT NOT NULL, key TEXT)",
        "CREATE INDEX IF NOT EXISTS outcomes_status_booked ON outcomes(status, booked_unix)",
        *_journal_triggers(),
    ),
)
