"""The loss limits' window spend as a running figure in memory (services/submit/safety.py).

The gate asks for the window's spend on every bundle (twice on a trader's lane). Re-read from
SQLite after every commit, its scans cost 0.5-1 ms a bundle (~11 ms at p95 under load), and
nearly every commit was the ledger's own: a signed trade, a `not_sent` booking, `sent` and
`published` flags. So the figure is read once and then kept exact by the ledger's own writes:
a tx signed (a trade or a cancel) adds its worst case to what is in flight; writes that leave
the spend as it is (a booking that is neither `included` nor `reverted` nor replaces one, the
`sent` and `published` flags) change nothing; every other write (a settlement, a reorg's
re-opening, a chain reset, a trip or its clear) marks it stale. A commit by any other
connection (the settlement worker, an operator's command, another process) shows in the
ledger connection's `PRAGMA data_version`, which its own commits never move: then it is read
again. A read runs in one read transaction, so it is one consistent state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.submit.limits import Spend


@dataclass
class RunningSpend:
    """The window's spend as read at `version` (the ledger connection's data_version), with
    the txs signed since added to `worst`."""

    version: int
    native_token: str | None
    cleared: float  # the last clear of a trip (the window starts at it or the UTC day)
    since: float
    settled: Spend  # gas spent, native profit and reverts in a row; in flight is `worst`
    worst: dict[tuple[str, int], int] = field(default_factory=dict)
    figure: Spend = field(init=False)

    def __post_init__(self) -> None:
        self.figure = self._total()

    def _total(self) -> Spend:
        s = self.settled
        return Spend(s.gas_spent, s.native_profit, sum(self.worst.values()), s.consecutive_reverts)

    def add_in_flight(self, sender: str, nonce: int, cost: int) -> None:
        """A tx signed on (sender, nonce): of the txs on one nonce of one account only one can
        be mined, so the worst of them counts (a cancel replaces its trade)."""
        key = (sender.lower(), nonce)
        if cost > self.worst.get(key, -1):
            self.worst[key] = cost
            self.figure = self._total()
