"""Pools and tokens that keep reverting are set aside for a while. Pure (the clock is passed in).

A revert strikes every pool of the path and every token but the profit token (which is in
every cycle, so striking it would stop everything); `TransferFailed(token)` strikes that token;
`InsufficientProfit` (the path paid less than detect priced) strikes the pools only.
K strikes inside the window quarantine the address for `quarantine_s`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address


def struck_by(
    hops: Sequence[tuple[str, str]],
    profit_token: str | None,
    revert: str | None,
    args: Sequence[Any] = (),
) -> list[str]:
    """The addresses one simulated revert of a path strikes; `hops` are (pool, token out)."""
    profit = (profit_token or "").lower()
    addresses = [pool for pool, _ in hops]
    if revert != "InsufficientProfit":
        addresses += [token for _, token in hops if token.lower() != profit]
    # else the path paid less than detect priced: a state or sizing miss of those pools, not a
    # token's fault (three such misses quarantined USDC, so every cycle through it, for 15
    # minutes in bench's flows)
    if revert == "TransferFailed" and args and str(args[0]).lower() != profit:
        addresses.append(to_checksum_address(str(args[0])))
    return addresses


@dataclass
class Quarantine:
    strikes_to_quarantine: int
    window_s: float
    quarantine_s: float
    _strikes: dict[str, deque[float]] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    def strike(self, addresses: Iterable[str], now: float) -> list[str]:
        """Count one revert against each address; returns the newly quarantined ones."""
        newly = []
        for address in set(addresses):
            times = self._strikes.setdefault(address, deque())
            times.append(now)
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) >= self.strikes_to_quarantine and not self.is_quarantined(address, now):
                self._until[address] = now + self.quarantine_s
                times.clear()
                newly.append(address)
        return newly

    def is_quarantined(self, address: str, now: float) -> bool:
        until = self._until.get(address)
        if until is None:
            return False
        if now >= until:
            del self._until[address]
            return False
        return True

    def blocked(self, addresses: Iterable[str], now: float) -> list[str]:
        return sorted(a for a in set(addresses) if self.is_quarantined(a, now))

    def active(self, now: float) -> dict[str, float]:
        """Quarantined address -> seconds left (for health)."""
        for address in [a for a, t in self._until.items() if now >= t]:
            del self._until[address]
        return {a: round(t - now, 1) for a, t in sorted(self._until.items())}
