"""What the ledger says of our nonces: a cancel left `sent` after its trade settled
(orphan_cancels.py: the chain's word on it, and the rows that tell another tx of ours took its
nonce), and the nonces our receipts show mined (the floor of a nonce resync). Real SQLite, no
chain."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.submit import ledger_chain
from services.submit.ledger import Ledger
from services.submit.orphan_cancels import fate
from tests.unit.submit.test_chain_binding import bundle, tx

LANE = "0x" + "aa" * 20
RECEIPT = {"blockNumber": "0x1f5", "blockHash": "0x" + "01" * 32, "status": "0x1"}


def test_a_receipt_mines_it_whatever_else_holds() -> None:
    cancel = tx("b", 7, "cancel")
    end = fate(cancel, RECEIPT, mined_nonce=8, taken_by="0xother")
    assert (end and end.state, end and end.why) == ("mined", "mined in block 501")


def test_its_nonce_taken_by_ours_or_below_the_count_without_a_receipt_drops_it() -> None:
    cancel = tx("b", 7, "cancel")
    taken = fate(cancel, None, mined_nonce=8, taken_by="0xother")
    assert taken is not None and (taken.state, taken.receipt) == ("dropped", None)
    assert taken.why == "its nonce 7 was taken by our tx 0xother"
    below = fate(cancel, None, mined_nonce=8, taken_by=None)
    assert below is not None and below.state == "dropped"
    assert below.why == "its nonce 7 is below the chain's count 8 and it has no receipt"


def test_its_nonce_not_reached_yet_it_waits() -> None:
    assert fate(tx("b", 7, "cancel"), None, mined_nonce=7, taken_by=None) is None


def test_mined_on_names_our_mined_tx_on_that_nonce_of_that_sender_only(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    cancel = replace(tx("a", 7, "cancel"), sender=LANE)
    ours = replace(tx("b", 7), sender=LANE)
    legacy = replace(tx("c", 9), sender="")  # a row older than lanes: lane 0's
    for trade in (ours, legacy):
        assert ledger.record_signed(bundle(trade.bundle_id), trade, "", 0)
    ledger.record_cancel(cancel)
    assert ledger.mined_on(LANE, 7, True, cancel.hash) is None  # `ours` is only sent
    ledger._db.execute("UPDATE txs SET state = 'mined' WHERE bundle_id != 'a'")
    assert ledger.mined_on(LANE.upper().replace("0X", "0x"), 7, False, cancel.hash) == ours.hash
    assert ledger.mined_on("0x" + "bb" * 20, 7, False, cancel.hash) is None  # another lane
    assert ledger.mined_on(LANE, 9, True, cancel.hash) == legacy.hash
    assert ledger.mined_on(LANE, 9, False, cancel.hash) is None
    ledger.close()


def test_mined_count_is_one_past_our_highest_receipt_above_the_nodes_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The floor of a nonce resync (sync_nonces): our receipts in blocks above the counting
    node's head; receipts of another chain instance (a ledger reset onto a new devnet) or of
    another lane do not count; only the latest receipts are read."""
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.genesis_hash = "0x" + "0a" * 32
    assert ledger.mined_count(LANE, True, 0) == 0
    rows = [
        replace(tx("a", 4), sender=LANE),
        replace(tx("b", 6), sender=""),
        replace(tx("c", 9), sender="0x" + "bb" * 20),
        replace(tx("d", 11), sender=LANE),
    ]
    for row in rows:
        assert ledger.record_signed(bundle(row.bundle_id), row, "", 0)
    for block, row in enumerate(rows, start=1):
        genesis = "0x" + "0b" * 32 if row.bundle_id == "d" else ledger.genesis_hash
        ledger._db.execute(
            "INSERT INTO receipts (tx_hash, block_number, block_hash, status, gas_used, "
            "effective_gas_price, gas_cost, realized_profit, genesis_hash) "
            "VALUES (?, ?, '0x', 1, 21000, '1', '21000', '0', ?)",
            (row.hash, block, genesis),
        )
    assert ledger.mined_count(LANE, False, 0) == 5  # nonce 11's receipt is of another chain
    assert ledger.mined_count(LANE, True, 0) == 7  # lane 0: the row older than lanes too
    assert ledger.mined_count(LANE, True, 1) == 7  # a node at block 1 has not seen block 2
    assert ledger.mined_count(LANE, True, 2) == 0  # at block 2 its count is the chain's word
    assert ledger.mined_count("0x" + "BB" * 20, False, 2) == 10
    monkeypatch.setattr(ledger_chain, "RECENT_RECEIPTS", 2)  # the receipts of c and d only
    assert ledger.mined_count(LANE, True, 0) == 0
    assert ledger.mined_count("0x" + "bb" * 20, False, 0) == 10
    ledger.close()
