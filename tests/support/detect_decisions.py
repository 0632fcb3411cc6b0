"""Detect's pending path run twice over the same seeded real backrun candidates (bench/swaps.py,
the throughput bench's triggers), once per setting of one of its switches: the decision tests
compare what it publishes (tests/unit/detect/test_screen_decisions.py, test_hot_path_decisions.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import services.detect.search as search_module
from bench import detect_profile
from bench.swaps import pending_swaps

Shown = TypeVar("Shown")


def decisions(
    switch: str, on: bool, counted: str, seed: int, n: int, shown: Callable[[str, Any], Shown]
) -> tuple[list[Shown], Any, int]:
    """Every message detect publishes for n seeded swaps (`shown(subject, message)`, in order),
    its search counts, and how many times search's `counted` function ran, with
    `search.<switch>` set to `on`; both restored after (the switch to its default, True)."""
    found, deployment, bus = detect_profile.detector()
    sent: list[Shown] = []
    publish = bus.publish

    async def record(subject: str, message: Any, **kw: Any) -> None:
        sent.append(shown(subject, message))
        await publish(subject, message, **kw)

    bus.publish = record  # type: ignore[method-assign]
    calls = 0
    real = getattr(search_module, counted)

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args)

    payloads = pending_swaps(deployment, n, seed=seed)
    setattr(search_module, switch, on)
    setattr(search_module, counted, counting)
    try:
        asyncio.run(detect_profile.feed(found, payloads))
    finally:
        setattr(search_module, switch, True)
        setattr(search_module, counted, real)
    return sent, found.stats, calls
