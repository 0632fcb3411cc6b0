"""Detect's pending path with the float screen (amm/screen.py) decides exactly what the exact
search decides: over seeded real backrun candidates on the devnet's pools (bench/swaps.py: the
triggers the throughput bench sends), the same opportunities (ids, in order), the same
withdrawals, the same search counts, with the screen on and with every cycle taken through
the exact bound. And the screen did run (the test is not vacuous)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import services.detect.search as search_module
from bench import detect_profile
from bench.swaps import pending_swaps


def run(screened: bool, seed: int, n: int) -> tuple[list[tuple[str, str]], Any, int]:
    """Every message detect publishes for n seeded swaps, its search counts, and how many
    pools the screen read rates of."""
    found, deployment, bus = detect_profile.detector()
    sent: list[tuple[str, str]] = []
    publish = bus.publish

    async def record(subject: str, message: Any, **kw: Any) -> None:
        sent.append((subject, getattr(message, "id", None) or message.opportunity_id))
        await publish(subject, message, **kw)

    bus.publish = record  # type: ignore[method-assign]
    read = 0
    real = search_module.pool_rates

    def counted(pool: Any) -> Any:
        nonlocal read
        read += 1
        return real(pool)

    payloads = pending_swaps(deployment, n, seed=seed)
    search_module.SCREEN, search_module.pool_rates = screened, counted
    try:
        asyncio.run(detect_profile.feed(found, payloads))
    finally:
        search_module.SCREEN, search_module.pool_rates = True, real
    return sent, found.stats, read


@pytest.mark.parametrize("seed", [8, 21])
def test_the_screen_changes_no_decision(seed: int) -> None:
    exact, exact_stats, none = run(False, seed, 400)
    screened, screened_stats, read = run(True, seed, 400)
    assert none == 0
    opportunities = [i for s, i in exact if ".opportunities." in s]
    assert len(opportunities) >= 300  # real candidates: most swaps are backrun
    assert screened == exact  # same ids, same order, withdrawals included
    assert screened_stats == exact_stats
    assert read >= 400  # the screen ran on every search
