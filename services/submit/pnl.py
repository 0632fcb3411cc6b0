"""Submit's P&L: read from the ledger through the one read API, `mev_common.ledger_view`
(which owns the queries; the schema is `mev_common.ledger_schema`). Kept as submit's name for
it: the service's hourly gauges and the e2e test import `pnl_summary` from here.
"""

from __future__ import annotations

from mev_common.ledger_view import SETTLED, PnlSummary, pnl_summary

__all__ = ["SETTLED", "PnlSummary", "pnl_summary"]
