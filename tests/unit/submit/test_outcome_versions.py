"""Which outcomes are published again, under which message id: a mined orphaned cancel's gas
corrects its bundle's booked outcome (orphan_cancels.py), published under `:c<n>` (the same
id would be dropped by the stream as a duplicate); a correction booked while the outcome it
corrects is being published is not marked published with it. Real SQLite, no chain."""

from __future__ import annotations

from pathlib import Path

from mev_common.messages import Outcome

from services.submit.ledger import Ledger
from services.submit.ledger_records import PendingPublish, Settled, TxRecord
from tests.unit.submit.test_chain_binding import bundle, tx

PRICE = 7


def refused_with_a_sent_cancel(ledger: Ledger, bundle_id: str, nonce: int) -> TxRecord:
    """A trade refused everywhere (booked not_sent) whose cancel went out on its nonce."""
    trade, cancel = tx(bundle_id, nonce), tx(bundle_id, nonce, "cancel")
    assert ledger.record_signed(bundle(bundle_id), trade, "trace", 5)
    ledger.record_cancel(cancel)
    ledger.mark_sent(cancel.hash)
    refused = Outcome(bundle_id=bundle_id, chain_id=31337, strategy="cyclic_arbitrage",
                      status="not_sent", reason="refused")  # fmt: skip
    ledger.resolve(Settled(bundle(bundle_id), refused, {trade.hash: "rejected"}))
    return cancel


def mined(cancel: TxRecord) -> dict[str, object]:
    gas = {"gas_used": 21_000, "effective_gas_price": str(PRICE), "gas_cost": str(21_000 * PRICE)}
    block = {"block_number": 501, "block_hash": "0x" + "01" * 32, "status": 1}
    return {"tx_hash": cancel.hash, **block, **gas, "realized_profit": "0", "event_profit": None}


def test_a_mined_cancels_gas_is_published_again_even_if_booked_while_publishing(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    cancel = refused_with_a_sent_cancel(ledger, "a", 7)
    [first] = ledger.unpublished()
    assert (first.version, first.outcome.gas_used) == ("", 0)
    # the cancel resolved while `first` is on its way to the bus
    ledger.resolve_orphan_cancel(cancel, "mined", mined(cancel), 21_000, PRICE, "its cancel")
    ledger.mark_published("a", first.corrections)
    [again] = ledger.unpublished()
    assert (again.version, again.outcome.gas_used, again.outcome.effective_gas_price) == (
        ":c1",
        21_000,
        PRICE,
    )
    assert (again.trace, again.seen_ns) == ("trace", 5)
    ledger.mark_published("a", again.corrections)
    assert ledger.unpublished() == []
    ledger.close()


def test_a_dropped_cancel_adds_no_gas_and_is_not_published_again(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    cancel = refused_with_a_sent_cancel(ledger, "b", 8)
    ledger.mark_published("b")
    ledger.resolve_orphan_cancel(cancel, "dropped", None, 0, 0, "its nonce was taken")
    assert ledger.unpublished() == []
    ledger.close()


def test_the_version_names_the_reorg_re_booking_and_the_correction() -> None:
    outcome = Outcome(bundle_id="c", chain_id=1, strategy="cyclic_arbitrage", status="dropped")
    versions = [PendingPublish(outcome, "", 0, r, c).version for r, c in ((0, 0), (2, 0), (2, 1))]
    assert versions == ["", ":r2", ":r2:c1"]
