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
)
