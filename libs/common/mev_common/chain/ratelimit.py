"""Token bucket per RPC endpoint, with a live factor (`mev-bot --adjust-rpc-rate 0.8`).

Pure over an injected clock, so tests check exact token counts without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, up to `burst`; `factor` scales the rate from now on."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.base_rate = rate
        self.factor = 1.0
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    @property
    def rate(self) -> float:
        return self.base_rate * self.factor

    def set_factor(self, factor: float) -> None:
        """Apply a new share of the configured rate; tokens earned so far are kept."""
        if not 0 < factor <= 10:
            raise ValueError("rate factor must be in (0, 10]")
        self._refill()
        self.factor = factor

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self, tokens: float = 1.0, keep: float = 0.0) -> float:
        """Take tokens if available and return 0.0, else return the seconds to wait. `keep`:
        tokens that must stay after the take, so work that can wait never spends what work that
        cannot finds at once (capped at burst - tokens: a full bucket always serves it)."""
        self._refill()
        need = tokens + max(0.0, min(keep, self.burst - tokens))
        if self._tokens >= need:
            self._tokens -= tokens
            return 0.0
        return (need - self._tokens) / self.rate

    @property
    def available(self) -> float:
        self._refill()
        return self._tokens
