"""Who took a contested backrun: the first of the two that succeeded right after the victim."""

from __future__ import annotations

from bench.scenarios.rival import Landing, Tally, judge


def test_judge_counts_each_contest_once_by_what_landed() -> None:
    landed = {
        "v1": Landing(10, 3, True), "o1": Landing(10, 4, True), "r1": Landing(10, 5, True),
        "v2": Landing(10, 6, True), "o2": Landing(10, 8, False), "r2": Landing(10, 7, True),
        "v3": Landing(11, 0, True), "o3": Landing(11, 2, True), "r3": Landing(11, 1, False),
        "v4": Landing(12, 0, True), "o4": Landing(13, 0, True), "r4": Landing(12, 1, False),
        "v5": Landing(14, 5, True), "o5": Landing(14, 4, True), "r5": Landing(14, 9, True),
    }  # fmt: skip
    contests = [
        ("v1", "o1", "r1"),  # both succeeded: ours first
        ("v2", "o2", "r2"),  # the rival first, ours reverted
        ("v3", "o3", "r3"),  # the rival first but reverted: ours took it
        ("v4", "o4", "r4"),  # ours in the next block, the rival reverted: neither
        ("v5", "o5", "r5"),  # ours ahead of its victim does not count: the rival's
        ("v6", "o6", "r6"),  # nothing mined at all
    ]
    assert judge(contests, landed) == Tally(contested=6, ours=2, rival=2, neither=2)
    assert judge(contests, landed).win_rate() == 50.0
    assert Tally().win_rate() == 0.0 and Tally().decided == 0
