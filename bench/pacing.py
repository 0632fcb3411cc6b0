"""Send at a fixed rate from one asyncio task, as a feed delivers: no bursts, no catch-up storms.

Why a schedule instead of sleep(1/rate): sleeps overshoot by ~0.1 ms each, so a loop of them
drifts below the rate; here message i is due at t0 + i/rate and a late loop sends what is due at
once, in concurrent publishes (the way ingest gathers its fetches).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def paced(n: int, rate: float, send: Callable[[int], Awaitable[object]]) -> float:
    """Call `send(i)` for i in 0..n-1 at `rate` per second; returns the achieved rate."""
    started = time.perf_counter()
    i = 0
    while i < n:
        now = time.perf_counter()
        due = min(n, int((now - started) * rate) + 1)
        if due > i:
            batch = range(i, due)
            if len(batch) == 1:
                await send(i)
            else:
                await asyncio.gather(*(send(k) for k in batch))
            i = due
        else:
            await asyncio.sleep(max(0.0, started + i / rate - now))
    elapsed = time.perf_counter() - started
    return n / elapsed if elapsed > 0 else float("inf")
