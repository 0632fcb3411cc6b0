"""Cancel rows left `sent` after their trade settled: resolved against the chain.

A ledger written before a cancel waited for its trade's broadcast answer (cancels.py) can hold
a cancel whose trade every node refused (booked not_sent) while the cancel was sent on its
nonce. Tracking follows trades, so that row stayed `sent` for ever: its nonce held in flight,
its worst-case gas counted against the loss limits, and, if it mined, its gas never booked.
Each tracking pass resolves such a row once the chain has decided it:
- its receipt: mined; its gas (from the receipt) is booked in the receipts (the loss limits'
  spend) and on its bundle's outcome (the P&L), which is published again with it (message id
  `outcome:<bundle>:c<n>`: the outcome on the bus was booked without that gas);
- another tx of ours mined on its nonce, or the nonce below the chain's mined count with no
  receipt (asked again over the receipt lag): dropped, no gas;
- otherwise (its nonce not reached yet) it waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.submit.lanes import Lane
from services.submit.ledger_records import TxRecord
from services.submit.profit import realized_from_receipt

if TYPE_CHECKING:
    from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")


@dataclass(frozen=True)
class Fate:
    """How an orphaned cancel ended: `mined` (with its receipt) or `dropped`."""

    state: str
    why: str
    receipt: dict[str, Any] | None = None


def fate(
    cancel: TxRecord, receipt: dict[str, Any] | None, mined_nonce: int, taken_by: str | None
) -> Fate | None:
    """The chain's word on a cancel whose trade is settled, or None while it may still mine.
    `taken_by`: our tx mined on the cancel's nonce, if the ledger has one."""
    if receipt is not None:
        return Fate("mined", f"mined in block {int(receipt['blockNumber'], 16)}", receipt)
    if taken_by is not None:
        return Fate("dropped", f"its nonce {cancel.nonce} was taken by our tx {taken_by}")
    if cancel.nonce < mined_nonce:
        return Fate(
            "dropped",
            f"its nonce {cancel.nonce} is below the chain's count {mined_nonce} and it has no "
            "receipt",
        )
    return None


async def resolve_orphans(
    sub: Submitter,
    lane: Lane,
    orphans: Sequence[TxRecord],
    receipts: dict[str, dict[str, Any] | None],
    mined_nonce: int,
    asks_s: Sequence[float],
) -> None:
    """Resolve the orphaned cancels of one lane the chain has decided (module docstring).
    One dropped for want of a receipt alone is asked again at `asks_s` first: a node counts a
    mined nonce a moment before it serves the receipt."""
    fates: dict[str, Fate] = {}
    unsure: list[TxRecord] = []  # dropped for want of a receipt alone
    for tx in orphans:
        receipt, taken = receipts.get(tx.hash), None
        if receipt is None and tx.nonce < mined_nonce:  # (the ledger is read once it counts)
            taken = sub.ledger.mined_on(lane.address, tx.nonce, lane.index == 0, tx.hash)
        found = fate(tx, receipt, mined_nonce, taken)
        if found is not None:
            fates[tx.hash] = found
            if found.receipt is None and taken is None:
                unsure.append(tx)
    waited = 0.0
    for at in asks_s if unsure else ():
        await asyncio.sleep(at - waited)
        waited = at
        calls = [("eth_getTransactionReceipt", [t.hash]) for t in unsure]
        replies = await sub.pool.call_batch(calls)
        for tx, reply in zip(unsure, replies, strict=True):
            if isinstance(reply, dict):
                fates[tx.hash] = fate(tx, reply, mined_nonce, None) or fates[tx.hash]
        unsure = [t for t in unsure if fates[t.hash].receipt is None]
        if not unsure:
            break
    for tx in orphans:
        if tx.hash in fates:
            _book(sub, lane, tx, fates[tx.hash])
    if any(end.receipt is not None for end in fates.values()):
        await sub.publish_pending()  # the outcomes corrected with their cancel's gas


def _book(sub: Submitter, lane: Lane, tx: TxRecord, end: Fate) -> None:
    receipt_row: dict[str, object] | None = None
    gas_used = gas_cost = price = 0
    if end.receipt is not None:
        realized = realized_from_receipt(end.receipt, sub.executor, None)
        gas_used, price = realized.gas_used, realized.effective_gas_price
        gas_cost = realized.gas_cost
        receipt_row = {
            "tx_hash": tx.hash,
            "block_number": int(end.receipt["blockNumber"], 16),
            "block_hash": end.receipt["blockHash"],
            "status": int(end.receipt.get("status", "0x0"), 16),
            "gas_used": gas_used,
            "effective_gas_price": str(price),
            "gas_cost": str(gas_cost),
            "realized_profit": "0",
            "event_profit": None,
        }
    note = f"its cancel {tx.hash} (nonce {tx.nonce}), left sent after the trade settled: {end.why}"
    sub.ledger.resolve_orphan_cancel(tx, end.state, receipt_row, gas_used, price, note)
    lane.nonces.release(tx.nonce)
    fields = {"bundle": tx.bundle_id, "cancel": tx.hash, "nonce": tx.nonce, "state": end.state,
              "gas_cost": str(gas_cost), "why": end.why}  # fmt: skip
    log.warning("orphaned cancel resolved", extra={"fields": fields})
