"""The ledger's chain records: which chain instance it belongs to, and reorg re-opening.

Kept apart from ledger.py (bundles, txs, outcomes) because they answer another question: is
what the ledger says still true of the chain the node serves? `Ledger` inherits these methods.
"""

from __future__ import annotations

import sqlite3
import time

from mev_common.messages import Bundle, Outcome


class ChainRecords:
    """Mixin over the ledger's connection (`_db`) and its outcome writer."""

    _db: sqlite3.Connection
    genesis_hash: str | None

    def _insert_outcome(self, outcome: Outcome, gas_cost: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _changed(self) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- the chain this ledger belongs to -----------------------------------------------------
    def binding(self) -> tuple[int, str] | None:
        """(chain id, genesis hash) this ledger was bound to, None for a new or older file."""
        row = self._db.execute(
            "SELECT chain_id, genesis_hash FROM chain_binding WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        self.genesis_hash = str(row[1])
        return (int(row[0]), str(row[1]))

    def bind(self, chain_id: int, genesis_hash: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO chain_binding (id, chain_id, genesis_hash, bound_at) "
            "VALUES (1, ?, ?, ?)",
            (chain_id, genesis_hash.lower(), time.time()),
        )
        self.genesis_hash = genesis_hash.lower()

    def close_for_chain_reset(self, chain_id: int, genesis_hash: str, reason: str) -> list[Outcome]:
        """One transaction: every unresolved tx becomes `chain_reset`, each of their bundles
        gets a `chain_reset` outcome (published as usual), and the ledger is bound to the new
        chain. Those txs can never be mined on the new chain: their nonces mean nothing there."""
        closed: list[Outcome] = []
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                "SELECT DISTINCT b.payload, t.hash FROM txs t JOIN bundles b ON b.id = t.bundle_id "
                "WHERE t.state IN ('signed', 'sent') AND t.kind = 'trade'"
            ).fetchall()
            for payload, trade_hash in rows:
                bundle = Bundle.model_validate_json(payload)
                outcome = Outcome(
                    bundle_id=bundle.id,
                    chain_id=bundle.chain_id,
                    strategy=bundle.strategy,
                    status="chain_reset",
                    tx_hash=trade_hash,
                    reason=reason,
                )
                self._insert_outcome(outcome, 0)
                closed.append(outcome)
            self._db.execute(
                "UPDATE txs SET state = 'chain_reset', resolved_at = ? "
                "WHERE state IN ('signed', 'sent')",
                (now,),
            )
            self.bind(chain_id, genesis_hash)
        self._changed()  # its txs left flight
        return closed

    # -- reorgs ------------------------------------------------------------------------------
    def recent_receipts(self, min_block: int) -> list[tuple[str, int, str]]:
        """(bundle id, block number, block hash) of this chain's receipts at or above
        `min_block`, highest block first (what a reorg could still take away)."""
        rows = self._db.execute(
            "SELECT t.bundle_id, r.block_number, r.block_hash FROM receipts r "
            "JOIN txs t ON t.hash = r.tx_hash WHERE r.block_number >= ? AND r.genesis_hash IS ? "
            "ORDER BY r.block_number DESC",
            (min_block, self.genesis_hash),
        ).fetchall()
        return [(str(b), int(n), str(h).lower()) for b, n, h in rows]

    def reopen(self, bundle_id: str) -> None:
        """The block of this bundle's receipt left the canonical chain: forget the receipt and
        the outcome, put its settled txs back in flight (tracking books the final truth), and
        count the re-opening (the re-booked outcome is published under a new message id)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "DELETE FROM receipts WHERE tx_hash IN (SELECT hash FROM txs WHERE bundle_id = ?)",
                (bundle_id,),
            )
            self._db.execute(
                "UPDATE txs SET state = 'sent', resolved_at = NULL WHERE bundle_id = ? "
                "AND state IN ('mined', 'reverted', 'replaced')",
                (bundle_id,),
            )
            self._db.execute("DELETE FROM outcomes WHERE bundle_id = ?", (bundle_id,))
            self._db.execute(
                "UPDATE bundles SET reopened = reopened + 1 WHERE id = ?", (bundle_id,)
            )
        self._changed()  # its gas, profit and txs in flight moved
