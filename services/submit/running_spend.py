"""The loss limits' window spend as a running figure in memory (services/submit/safety.py).

The gate asks for the window's spend on every bundle (twice on a trader's lane), and the
settlement after every settled trade. Read in full, its scans cost 0.5-1 ms a bundle and grew
with the day (44 ms at 6,060 txs). So the figure is read once, in full, and kept per row: the
gas of each counted receipt, the profit of each counted outcome, the worst case of each tx in
flight. Then it is kept exact two ways:

- the ledger's own signed txs are added in memory as they are written (`add_in_flight`);
- every other change is read back from the spend journal (mev_common.ledger_schema): triggers
  name each row the spend reads that any connection changed, and only those rows are read again
  (services/submit/spend_read.py), with the revert streak (an indexed read of the streak only).

The window moving (a new UTC day, a trip's clear) or another token asked: read in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.submit.limits import Spend

Key = tuple[str, int]  # (sending account, lowercase; nonce)


@dataclass
class RunningSpend:
    """The window's spend as read at journal `seq`, from `version` (the ledger connection's
    data_version) on, with the txs signed since added."""

    version: int
    native_token: str | None
    cleared: float  # the last clear of a trip (the window starts at it or the UTC day)
    since: float
    seq: int  # the spend journal's last row this figure includes (-1: no journal)
    gas: dict[str, int] = field(default_factory=dict)  # tx hash -> its receipt's gas cost
    profit: dict[str, int] = field(default_factory=dict)  # bundle id -> realized profit
    flight: dict[str, tuple[Key, int]] = field(default_factory=dict)  # tx hash -> its worst
    reverts: int = 0
    figure: Spend = field(init=False)

    def __post_init__(self) -> None:
        self._on: dict[Key, dict[str, int]] = {}  # the txs in flight on each nonce
        for tx_hash, (key, cost) in self.flight.items():
            self._on.setdefault(key, {})[tx_hash] = cost
        self._gas, self._profit = sum(self.gas.values()), sum(self.profit.values())
        self._worst = sum(max(on.values()) for on in self._on.values())
        self._total()

    def _total(self) -> None:
        self.figure = Spend(self._gas, self._profit, self._worst, self.reverts)

    def add_in_flight(self, tx_hash: str, sender: str, nonce: int, cost: int) -> None:
        """A tx signed on (sender, nonce): of the txs on one nonce of one account only one can
        be mined, so the worst of them counts (a cancel replaces its trade)."""
        self._fly(tx_hash, ((sender or "").lower(), nonce), cost)
        self._total()

    def _fly(self, tx_hash: str, key: Key | None, cost: int) -> None:
        """`tx_hash` in flight on `key` at `cost` (None: not in flight)."""
        was = self.flight.pop(tx_hash, None)
        if was is not None:
            self._on_nonce(was[0], tx_hash, None)
        if key is not None:
            self.flight[tx_hash] = (key, cost)
            self._on_nonce(key, tx_hash, cost)

    def _on_nonce(self, key: Key, tx_hash: str, cost: int | None) -> None:
        on = self._on.setdefault(key, {})
        self._worst -= max(on.values(), default=0)
        if cost is None:
            on.pop(tx_hash, None)
        else:
            on[tx_hash] = cost
        self._worst += max(on.values(), default=0)
        if not on:
            del self._on[key]

    def update(
        self,
        txs: dict[str, tuple[int | None, tuple[Key, int] | None]],
        outcomes: dict[str, int | None],
        reverts: int | None,
        seq: int,
    ) -> None:
        """The rows read again, as of journal `seq`: per tx hash its counted gas and its worst
        case in flight, per bundle its counted profit (None: not counted), and the streak
        (None: no outcome changed)."""
        for tx_hash, (gas, flying) in txs.items():
            self._gas += _put(self.gas, tx_hash, gas)
            self._fly(tx_hash, *(flying or (None, 0)))
        for bundle_id, profit in outcomes.items():
            self._profit += _put(self.profit, bundle_id, profit)
        if reverts is not None:
            self.reverts = reverts
        self.seq = seq
        self._total()


def _put(counted: dict[str, int], key: str, value: int | None) -> int:
    """Set or drop `key`'s amount; returns how much the sum moved."""
    old = counted.pop(key, 0)
    if value is not None:
        counted[key] = value
    return (value or 0) - old
