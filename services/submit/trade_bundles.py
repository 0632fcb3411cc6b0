"""The bundles of one lane's unresolved trades, each read from the ledger once.

Every tracking pass looks at the bundle of each trade in flight: late_victims.py for a
backrun's victim, late_blocks.py for a block trade's block. A bundle row never changes once
written (INSERT OR IGNORE; a reorg only counts `reopened` beside it), so re-reading every
in-flight bundle from SQLite each pass (several a second per lane) only repeats what is known:
a pass reads the bundles of trades new since the last one, and forgets those that settled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from mev_common.messages import Bundle

from services.submit.ledger_records import TxRecord


class BundleSource(Protocol):
    def bundle(self, bundle_id: str) -> Bundle | None: ...


class TradeBundles:
    """bundle id -> Bundle of the trades a lane has in flight, as of the last pass."""

    def __init__(self) -> None:
        self._known: dict[str, Bundle] = {}

    def of(self, ledger: BundleSource, txs: Iterable[TxRecord]) -> dict[str, Bundle]:
        """The bundles of the trades among `txs` (the lane's unresolved txs), reading only
        those not known from an earlier pass; a bundle with no row is left out (and asked
        again next pass). Bundles of trades no longer among `txs` are forgotten."""
        known = self._known
        fresh: dict[str, Bundle] = {}
        for tx in txs:
            if tx.kind != "trade" or tx.bundle_id in fresh:
                continue
            bundle = known.get(tx.bundle_id) or ledger.bundle(tx.bundle_id)
            if bundle is not None:
                fresh[tx.bundle_id] = bundle
        self._known = fresh
        return fresh
