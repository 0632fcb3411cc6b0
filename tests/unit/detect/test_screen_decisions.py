"""Detect's pending path with the float screen (amm/screen.py) decides exactly what the exact
search decides: over seeded real backrun candidates on the devnet's pools (bench/swaps.py: the
triggers the throughput bench sends), the same opportunities (ids, in order), the same
withdrawals, the same search counts, with the screen on and with every cycle taken through
the exact bound. And the screen did run (the test is not vacuous)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.detect_decisions import decisions


def run(screened: bool, seed: int, n: int) -> tuple[list[tuple[str, str]], Any, int]:
    """Every message detect publishes for n seeded swaps, its search counts, and how many
    pools the screen read rates of."""
    return decisions("SCREEN", screened, "pool_rates", seed, n, shown)


def shown(subject: str, message: Any) -> tuple[str, str]:
    return subject, getattr(message, "id", None) or message.opportunity_id


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
