"""The per-process RPC call budget: exact counts over a sliding minute, shares, degrade."""

from __future__ import annotations

import pytest
from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.budget import CallBudget


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_counts_slide_out_after_sixty_seconds() -> None:
    clock = Clock()
    b = CallBudget(40, clock)
    b.spend(10)
    clock.now += 30
    b.spend(20)
    assert (b.used(), b.total, b.ratio()) == (30, 30, 0.75)
    clock.now += 30  # the first 10 are exactly 60 s old: out of the window
    assert b.used() == 20
    clock.now += 30
    assert (b.used(), b.total, b.ratio()) == (0, 30, 0.0)


def test_allows_keeps_a_share_free_for_what_cannot_wait() -> None:
    b = CallBudget(100, Clock())
    b.spend(49)
    assert b.allows(1, keep_free=0.5)
    b.spend(1)
    assert not b.allows(1, keep_free=0.5)  # ranking endpoints waits
    assert b.allows(40, keep_free=0.1)  # a head poll still fits
    assert not b.allows(41, keep_free=0.1)
    b.spend(60)  # calls that happen are counted even past the budget
    assert (b.used(), b.ratio()) == (110, 1.1)
    assert not b.allows(1)


def test_unlimited_counts_but_never_refuses() -> None:
    b = CallBudget(None, Clock())
    b.spend(10_000)
    assert (b.used(), b.ratio(), b.allows(10_000, keep_free=0.9)) == (10_000, 0.0, True)


def test_configure_gives_the_service_its_share_and_the_metrics() -> None:
    try:
        b = budget.configure(100, 0.4)
        assert budget.process_budget() is b and b.per_minute == pytest.approx(40)
        assert metrics.RPC_BUDGET_PER_MINUTE._value.get() == pytest.approx(40)
        b.spend(10)
        assert metrics.RPC_BUDGET_USED_RATIO._value.get() == pytest.approx(0.25)
    finally:
        budget.configure(None)
    assert budget.process_budget().per_minute is None


def test_bad_budget_is_refused() -> None:
    with pytest.raises(ValueError):
        CallBudget(0)
