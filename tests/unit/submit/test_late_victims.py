"""services/submit/late_victims.py: which backruns lost their victim's block."""

from __future__ import annotations

from services.submit.late_victims import (
    REPLACED,
    InFlightBackrun,
    orphaned,
    victim_blocks,
    with_sender,
)

A = InFlightBackrun("bundle:backrun:a", "backrun:a", nonce=7, victim="0xaa")
B = InFlightBackrun("bundle:backrun:b", "backrun:b", nonce=8, victim="0xbb")
C = InFlightBackrun("bundle:backrun:c", "backrun:c", nonce=9, victim="0xcc")


def test_victim_blocks_reads_mined_receipts_reverted_ones_too() -> None:
    receipts = [
        {"blockNumber": "0x1f", "status": "0x1"},
        None,
        {"blockNumber": "0x20", "status": "0x0"},  # a reverted victim moved nothing: gone too
    ]
    assert victim_blocks([A, B, C], receipts) == {"0xaa": 31, "0xcc": 32}


def test_a_pending_receipt_is_not_mined() -> None:
    assert victim_blocks([A], [{"blockNumber": None}]) == {}


def test_orphaned_only_when_our_nonce_is_not_counted() -> None:
    mined_at = {"0xaa": 31, "0xbb": 31}
    # nonce 7 counted by the chain: A landed (behind its victim or not, tracking settles it)
    assert orphaned([A, B, C], mined_at, mined_nonce=8) == [
        ("backrun:b", "victim 0xbb mined in block 31 without it")
    ]
    assert [o for o, _ in orphaned([A, B, C], mined_at, mined_nonce=7)] == [
        "backrun:a",
        "backrun:b",
    ]
    assert orphaned([A, B, C], {}, mined_nonce=0) == []


def test_a_victim_whose_nonce_its_sender_used_without_a_receipt_is_replaced() -> None:
    d = InFlightBackrun("bundle:backrun:d", "backrun:d", nonce=10, victim="0xdd",
                        victim_sender="0xuser", victim_nonce=4)  # fmt: skip
    e = InFlightBackrun("bundle:backrun:e", "backrun:e", nonce=11, victim="0xee",
                        victim_sender="0xother", victim_nonce=9)  # fmt: skip
    backruns = [A, d, e]
    assert with_sender(backruns) == [d, e]  # A's bundle predates the fields: receipts only
    # d: no receipt, its sender's count 5 (nonce 4 used); e: count 9, nonce 9 still free
    assert victim_blocks(backruns, [None, None, None], ["0x5", "0x9"]) == {"0xdd": REPLACED}
    # a receipt wins over the count (mined, not replaced); a failed count read is no verdict
    mined = {"blockNumber": "0x21", "status": "0x1"}
    assert victim_blocks(backruns, [None, mined, None], ["0x5", RuntimeError()]) == {"0xdd": 33}
    assert orphaned(backruns, {"0xdd": REPLACED}, mined_nonce=10) == [
        ("backrun:d", "victim 0xdd replaced by its sender (nonce 4 used)")
    ]
