"""The RPC call budget: every JSON-RPC call this process makes, counted per sliding minute.

A rate-limited RPC (HyperEVM's official one: about 100 requests per minute per IP) counts each
call, a batch's included, and the four services share one IP. So the budget is
`chain.rpc_budget_per_minute`, split by `chain.rpc_budget_shares` into a per-service share, and
each process counts against its own share with one counter (JsonRpcClient spends from it at
every HTTP request, so no call path escapes it). Over the share, callers skip what can wait
(`allows`); nothing fails because of the budget itself. Unset (the default), nothing is limited
and only the count is kept.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from mev_common import metrics


class CallBudget:
    """Calls in the last 60 s against `per_minute` (None: unlimited, count only)."""

    def __init__(
        self, per_minute: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute is not None and per_minute <= 0:
            raise ValueError("per_minute must be > 0")
        self.per_minute = per_minute
        self._clock = clock
        self._calls: deque[float] = deque()
        self.total = 0

    def _trim(self) -> float:
        now = self._clock()
        while self._calls and self._calls[0] <= now - 60.0:
            self._calls.popleft()
        return now

    def spend(self, calls: int = 1) -> None:
        """Record `calls` made now (always: a call that happens is counted)."""
        now = self._trim()
        self._calls.extend([now] * calls)
        self.total += calls
        metrics.RPC_BUDGET_USED_RATIO.set(self.ratio())

    def used(self) -> int:
        self._trim()
        return len(self._calls)

    def ratio(self) -> float:
        """Share of the budget used in the last minute (0 when unlimited)."""
        return 0.0 if self.per_minute is None else self.used() / self.per_minute

    def allows(self, calls: int = 1, keep_free: float = 0.0) -> bool:
        """Whether `calls` more fit while `keep_free` (0..1) of the budget stays unused: work
        that can wait asks with keep_free > 0, so what cannot wait still finds room."""
        if self.per_minute is None:
            return True
        return self.used() + calls <= self.per_minute * (1.0 - keep_free)


_process = CallBudget()


def process_budget() -> CallBudget:
    """This process's budget (every JsonRpcClient spends from it)."""
    return _process


def configure(per_minute: float | None, share: float = 1.0) -> CallBudget:
    """Set this process's share of the chain's budget; called once at service start."""
    global _process
    _process = CallBudget(None if per_minute is None else per_minute * share)
    metrics.RPC_BUDGET_PER_MINUTE.set(0 if per_minute is None else per_minute * share)
    return _process
