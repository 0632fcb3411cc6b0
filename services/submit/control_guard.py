"""Keeps submit's control-KV watcher alive, and sends stopped while it is not.

Why: the watcher is how an emergency stop reaches submit. If it dies, a stop the operator puts
would go unseen while trades keep leaving, so a dead watcher is itself a stop: `down` names why
(send_blocker refuses with it, /health is 503) until the watcher is restarted, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from mev_common import metrics

log = logging.getLogger("mev.submit")


class ControlGuard:
    def __init__(
        self,
        run: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
        first_delay_s: float = 0.5,
        max_delay_s: float = 10.0,
    ) -> None:
        self.run = run
        self.stop = stop
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.down: str | None = "control watcher not started"
        self.restarts = 0

    async def supervise(self) -> None:
        delay = self.first_delay_s
        while not self.stop.is_set():
            self.down = None
            metrics.CONTROL_WATCHER_UP.set(1)
            started = time.monotonic()
            try:
                await self.run()
                if self.stop.is_set():
                    return
                self.down = "control watcher ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.down = f"control watcher failed: {exc!r}"[:200]
            metrics.CONTROL_WATCHER_UP.set(0)
            log.error(
                "control watcher down: sends stopped until it is back",
                extra={"fields": {"why": self.down, "retry_in_s": delay}},
            )
            if time.monotonic() - started > 60:
                delay = self.first_delay_s  # it ran a while: this is a new failure, not a loop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
            delay = min(delay * 2, self.max_delay_s)
            self.restarts += 1
