"""The pending transactions ingest has seen: dedup of repeats and the mempool-size gauge."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class MempoolView:
    """Hashes seen in the last `max_age_s`, at most `capacity` (oldest dropped first)."""

    def __init__(
        self, max_age_s: float, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self.capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, tx_hash: str) -> bool:
        """True the first time a hash is seen (while remembered)."""
        self._expire()
        if tx_hash in self._seen:
            return False
        self._seen[tx_hash] = self._clock()
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True

    @property
    def seen(self) -> OrderedDict[str, float]:
        """The hashes remembered now (read-only use: `in`)."""
        return self._seen

    def mined(self, tx_hashes: Iterable[str]) -> None:
        for tx_hash in tx_hashes:
            self._seen.pop(tx_hash, None)

    def _expire(self) -> None:
        cutoff = self._clock() - self.max_age_s
        while self._seen and next(iter(self._seen.values())) < cutoff:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        self._expire()
        return len(self._seen)
