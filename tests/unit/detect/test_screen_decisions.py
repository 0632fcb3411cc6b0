"""Detect's pending path with the float screen (amm/screen.py) decides exactly what the exact
search decides: over seeded real backrun candidates on the devnet's pools (bench/swaps.py: the
triggers the throughput bench sends), the same opportunities (ids, in order), the same
withdrawals, the same search counts, with the screen on and with every cycle taken through
the exact bound. And the screen did the dropping (it is not vacuous)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mev_common.amm import screen

import services.detect.search as search_module
from bench import detect_profile
from bench.swaps import pending_swaps


def run(screened: bool, seed: int, n: int) -> tuple[list[tuple[str, str]], Any, int]:
    """Every message detect publishes for n seeded swaps, its search counts, and how many
    cycles the screen decided alone."""
    found, deployment, bus = detect_profile.detector()
    sent: list[tuple[str, str]] = []
    publish = bus.publish

    async def record(subject: str, message: Any, **kw: Any) -> None:
        sent.append((subject, getattr(message, "id", None) or message.opportunity_id))
        await publish(subject, message, **kw)

    bus.publish = record  # type: ignore[method-assign]
    decided = 0
    real = screen.v2_bounds

    def counted(*args: Any) -> tuple[float, float] | None:
        nonlocal decided
        bounds = real(*args) if screened else None
        decided += bounds is not None
        return bounds

    payloads = pending_swaps(deployment, n, seed=seed)
    original = search_module.v2_bounds
    search_module.v2_bounds = counted
    try:
        asyncio.run(detect_profile.feed(found, payloads))
    finally:
        search_module.v2_bounds = original
    return sent, found.stats, decided


@pytest.mark.parametrize("seed", [8, 21])
def test_the_screen_changes_no_decision(seed: int) -> None:
    exact, exact_stats, none = run(False, seed, 400)
    screened, screened_stats, decided = run(True, seed, 400)
    assert none == 0
    opportunities = [i for s, i in exact if ".opportunities." in s]
    assert len(opportunities) >= 300  # real candidates: most swaps are backrun
    assert screened == exact  # same ids, same order, withdrawals included
    assert screened_stats == exact_stats
    assert decided >= exact_stats.searched // 2  # it saw most cycles
