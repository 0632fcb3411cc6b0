"""ReadAhead (services/detect/read_ahead.py): swaps a replica read ahead of its triggers leave
in stream order, and `outbid` is the highest tip through a pool among those still ahead."""

from __future__ import annotations

from services.detect.read_ahead import ReadAhead, ReadSwap


def swap(seq: int, tip: int, *pools: str, block: int = 1) -> ReadSwap:
    return ReadSwap(seq, f"0x{seq:02x}", pools, tip, block, f"s{seq}", 0)


def test_reached_returns_swaps_up_to_the_sequence_in_order() -> None:
    ahead = ReadAhead()
    for s in (swap(3, 5, "p"), swap(4, 1, "q"), swap(9, 2, "p", "q")):
        ahead.add(s)
    assert ahead.read_seq == 9
    assert [s.seq for s in ahead.reached(4)] == [3, 4]
    assert [s.seq for s in ahead.reached(4)] == []
    assert len(ahead) == 1
    assert [s.seq for s in ahead.reached(100)] == [9]
    assert len(ahead) == 0


def test_outbid_is_the_highest_tip_still_ahead_through_any_pool() -> None:
    ahead = ReadAhead()
    for s in (swap(1, 10, "p"), swap(2, 3, "p"), swap(3, 7, "q"), swap(4, 5, "p")):
        ahead.add(s)
    assert ahead.outbid(10, ["p"]) and not ahead.outbid(11, ["p"])
    assert ahead.outbid(7, ["q"]) and not ahead.outbid(8, ["q", "r"])
    ahead.reached(1)  # the 10 through p is reached: 5 (seq 4) is the highest left through p
    assert not ahead.outbid(6, ["p"]) and ahead.outbid(5, ["p"])
    ahead.reached(3)
    assert not ahead.outbid(1, ["q"]) and ahead.outbid(5, ["p"])
    ahead.reached(4)
    assert not ahead.outbid(0, ["p", "q"])


def test_drop_forgets_mined_and_aged_swaps_and_their_tips() -> None:
    ahead = ReadAhead()
    for s in (swap(1, 9, "p", block=1), swap(2, 8, "p", block=5), swap(3, 4, "p", block=5)):
        ahead.add(s)
    assert ahead.drop({"0x02"}, before_block=2) == 2  # seq 1 aged, seq 2 mined
    assert [s.seq for s in ahead.queue or ()] == [3]
    assert ahead.read_seq == 3
    assert ahead.outbid(4, ["p"]) and not ahead.outbid(5, ["p"])
