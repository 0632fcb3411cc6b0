"""Scenario 3's notes say what each load did to its opportunities, by trigger, exactly."""

from __future__ import annotations

from bench.load_outcomes import outcome_note


def test_only_what_the_load_added_largest_first_by_service_and_trigger() -> None:
    before = {"simulate pending published": 10, "simulate pending superseded": 5,
              "simulate block published": 7, "submit pending included": 3}  # fmt: skip
    after = {"simulate pending published": 46, "simulate pending superseded": 167,
             "simulate pending stale_timeout": 2, "simulate block published": 7,
             "submit pending included": 30, "submit pending not_sent": 1}  # fmt: skip
    assert outcome_note(before, after) == (
        "; simulate pending: superseded 162, published 36, stale_timeout 2"
        "; submit pending: included 27, not_sent 1"
    )


def test_nothing_added_is_no_note() -> None:
    same = {"simulate block published": 4}
    assert outcome_note(same, same) == ""
    assert outcome_note({}, {}) == ""
