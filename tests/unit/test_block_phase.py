"""The block production estimator (block_phase.py): hand-made polls of a 1-s chain whose
block n is produced at n + phase. Times are binary fractions so every bound is exact."""

from __future__ import annotations

import pytest
from mev_common.chain.block_phase import (
    LATE_HEAD,
    WINDOW,
    PhaseEstimator,
    Poll,
    ProductionClock,
    next_block_first,
)


def at(t: float, head: int) -> Poll:
    return Poll(sent=t, received=t, head=head)


def narrowed() -> PhaseEstimator:
    """Phase 0.375..0.40625 after six polls (true phase 0.4)."""
    est = PhaseEstimator(block_time=1.0)
    for poll in [at(10.25, 9), at(11.75, 11), at(13.5, 13), at(14.375, 13), at(15.4375, 15)]:
        est.observe(poll)
    est.observe(at(16.40625, 16))
    return est


def test_each_poll_bounds_the_phase_from_both_sides() -> None:
    est = PhaseEstimator(block_time=1.0)
    est.observe(Poll(sent=10.25, received=10.5, head=9))  # 10 after 10.25; 9 by 10.5
    assert est.interval() == (0.25, 1.5)
    est.observe(at(11.75, 11))
    assert est.interval() == (0.25, 0.75)
    est.observe(at(13.5, 13))
    assert est.interval() == (0.25, 0.5)
    assert not est.locked  # 0.25 wide


def test_narrow_intersection_locks_and_dates_blocks_at_the_earliest() -> None:
    est = narrowed()
    assert est.interval() == (0.375, 0.40625)
    assert est.locked
    assert est.produced_at(20) == 20.375  # the earliest: a block's age is never underestimated


def test_a_single_narrow_poll_is_not_a_lock() -> None:
    est = PhaseEstimator(block_time=1.0, lock_width=2.0)
    est.observe(at(10.25, 9))
    est.observe(at(11.75, 11))
    assert not est.locked and est.produced_at(12) is None  # fewer than MIN_POLLS
    est.observe(at(13.5, 13))
    assert est.locked and est.produced_at(12) == 12.25


def test_unlocked_polls_bisect_locked_polls_follow_production() -> None:
    est = PhaseEstimator(block_time=1.0)
    assert est.next_poll(7.3, 0.03125) == 7.3  # nothing known: when due
    for poll in [at(10.25, 9), at(11.75, 11), at(13.5, 13)]:
        est.observe(poll)
    assert est.next_poll(14.125, 0.03125) == 14.375  # the middle of (0.25, 0.5]
    assert est.next_poll(14.5, 0.03125) == 15.375  # never before it is due
    est = narrowed()
    assert est.next_poll(17.0, 0.03125) == 17.4375  # just after the latest production
    assert est.next_poll(17.4375, 0.03125) == 17.4375
    assert est.next_poll(17.5, 0.03125) == 18.4375  # less than a block late, never early


def test_a_contradicting_poll_resets_and_unlocks() -> None:
    est = narrowed()
    est.observe(at(18.25, 18))  # block 18 by 18.25: phase <= 0.25, but it was > 0.375
    assert est.resets == 1
    assert not est.locked and est.produced_at(18) is None
    # the two newest polls only said phase <= 0.4375 and <= 0.40625: they stay
    assert len(est.polls) == 3 and est.interval() == (-0.5625, 0.25)


def test_a_reset_keeps_the_newest_polls_that_agree() -> None:
    est = PhaseEstimator(block_time=1.0)
    est.observe(at(10.5, 10))  # phase <= 0.5
    est.observe(at(11.25, 10))  # phase > 0.25
    est.observe(at(12.625, 11))  # phase > 0.625: agrees with the second, not the first
    assert est.resets == 1
    assert list(est.polls) == [at(11.25, 10), at(12.625, 11)]
    assert est.interval() == (0.625, 1.25)


def test_jittered_block_times_do_not_lock() -> None:
    """Blocks 10, 11, 12, 13 produced at 10.0, 11.3, 11.9, 13.45: each poll
    contradicts the one before, so the estimate never holds three polls."""
    est = PhaseEstimator(block_time=1.0, lock_width=1.0)
    for poll in [at(10.0625, 10), at(11.25, 10), at(11.9375, 12), at(13.375, 12)]:
        est.observe(poll)
        assert not est.locked
    assert est.resets == 3


def test_old_polls_expire() -> None:
    est = narrowed()
    for n in range(WINDOW):
        est.observe(at(20 + n + 0.5, 20 + n))  # each only says phase <= 0.5
    assert est.interval() == (-0.5, 0.5)
    assert not est.locked


def test_block_time_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"chain\.block_time_s"):
        PhaseEstimator(block_time=0.0)


def test_next_block_first() -> None:
    assert not next_block_first(None, 99.0, 1.0, 0.125)  # not locked: today's behaviour
    assert not next_block_first(20.375, 21.25, 1.0, 0.0625)  # 0.875 + 0.0625 < 1
    assert next_block_first(20.375, 21.25, 1.0, 0.125)  # 0.875 + 0.125 >= 1


def test_production_clock_refuses_a_late_head_only_when_known() -> None:
    clock = ProductionClock(block_time=1.0, margin=0.125)
    assert clock.late_reason(20, 99_000_000_000) is None  # nothing known
    clock.saw(20, 20_375_000_000)
    assert clock.late_reason(20, 21_125_000_000) is None  # 0.75 s old
    reason = clock.late_reason(20, 21_250_000_000)
    assert reason == f"{LATE_HEAD} (block 20, 0.875 s old)"
    assert clock.late_reason(19, 20_250_000_000) is not None  # older state block: older
    clock.saw(19, None)  # an older message changes nothing
    assert clock.late_reason(20, 21_250_000_000) is not None
    clock.saw(21, None)  # not locked any more (or a WebSocket feed): never refused
    assert clock.late_reason(21, 99_000_000_000) is None
