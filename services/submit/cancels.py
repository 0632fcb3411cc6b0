"""Cancelling a trade: a 0-value self-transfer on its nonce at a higher fee.

Used when a trade passed its deadline block unmined, or detect withdrew it (it would revert),
or it stands on a trade of ours that will not land (stack_cancel.py decides which).
A cancel is capped by the strategy's max gas price and by max_cancels_per_nonce, and an
emergency stop holds cancels too: nothing at all leaves the process while it is on.

A cancel waits for its trade's broadcast answer (`Lane.unanswered`): sent beside it, both
would hold one nonce on the wire, and a refused trade (a cancel can make the node answer
"replacement underpriced") gives its nonce back to the next trade while the cancel may be
pooled on it, and the cancel's row would never settle (its trade booked not_sent). Once
answered: a refused trade is off the wire, so nothing is cancelled; an accepted (or unknown)
one is cancelled on its nonce. The wait is one broadcast's answer; the cancel still races
the trade to the next block.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mev_common.chain.jsonrpc import RpcError

from services.submit.fees import FeeRefusal, Fees, capped_cancel_fees
from services.submit.ledger_records import UNRESOLVED, TxRecord
from services.submit.sender import Verdict
from services.submit.stack_cancel import Stacked, stacked_to_cancel

if TYPE_CHECKING:
    from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")

CANCEL_GAS = 21_000


async def send_cancel(
    sub: Submitter, trade: TxRecord, last: TxRecord, why: str = "past deadline"
) -> None:
    if not await _on_the_wire(sub, trade):
        return  # refused by every node: its nonce is given back, there is nothing to cancel
    if sub.blocked():
        return  # an emergency stop holds cancels too: nothing at all leaves this process
    refused = _cancel_refusal(sub, trade)
    bundle = sub.ledger.bundle(trade.bundle_id)
    strategy = sub.policy.strategies.get(bundle.strategy) if bundle else None
    fees = (
        FeeRefusal(refused)
        if refused
        else capped_cancel_fees(
            Fees(last.max_fee_per_gas, last.max_priority_fee_per_gas),
            sub.head.next_base_fee,
            strategy.max_gas_price if strategy else last.max_fee_per_gas,
        )
    )
    if isinstance(fees, FeeRefusal):
        log.warning(
            f"trade {why}: no cancel sent",
            extra={"fields": {"bundle": trade.bundle_id, "nonce": trade.nonce, "why": fees.reason}},
        )
        return
    lane = sub.lane_of(trade)  # the nonce is the lane's: so is the cancel
    tx = {
        "type": 2,
        "chainId": sub.chain_id,
        "nonce": trade.nonce,
        "to": lane.address,
        "value": 0,
        "data": "0x",
        "gas": CANCEL_GAS,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
    }
    raw, tx_hash = lane.signer.sign(tx)
    record = TxRecord.signed(
        tx,
        raw,
        tx_hash,
        bundle_id=trade.bundle_id,
        kind="cancel",
        deadline_block=trade.deadline_block,
        sender=lane.address,
    )
    sub.ledger.record_cancel(record)
    result = await sub.pool.send_raw(raw)
    if result.verdict is not Verdict.REJECTED:
        sub.ledger.mark_sent(tx_hash)
    log.warning(
        f"trade {why}: cancel sent",
        extra={
            "fields": {
                "bundle": trade.bundle_id,
                "trade": trade.hash,
                "cancel": tx_hash,
                "nonce": trade.nonce,
                "head": sub.head.number,
                "deadline_block": trade.deadline_block,
                "verdict": result.verdict.value,
                "errors": result.reason,
            }
        },
    )


async def _on_the_wire(sub: Submitter, trade: TxRecord) -> bool:
    """Whether `trade` may be on the wire, once its broadcast is answered (awaited here if it
    is not: the answer is booked in the ledger before the lane is told, Submitter._after_send).
    Its row is read again: the caller's copy may predate a refusal."""
    lane = sub.lane_of(trade)
    if lane.unanswered == trade.hash:
        fields = {"bundle": trade.bundle_id, "trade": trade.hash, "nonce": trade.nonce}
        log.info("cancel waits for its trade's broadcast answer", extra={"fields": fields})
    while lane.unanswered == trade.hash:  # another broadcast may follow at once: not ours
        await lane.answered.wait()
    now = sub.ledger.trade_for(trade.bundle_id)
    return now is not None and now.state in UNRESOLVED


def _cancel_refusal(sub: Submitter, trade: TxRecord) -> str | None:
    sent = sum(1 for t in sub.ledger.txs_of(trade.bundle_id) if t.kind == "cancel")
    if sent >= sub.cfg.max_cancels_per_nonce:
        return f"{sent} cancels already sent for nonce {trade.nonce} (max_cancels_per_nonce)"
    return None


async def cancel_stacked(sub: Submitter, failed: str, mined_nonce: int | None = None) -> list[str]:
    """Our trade `failed` will not land (withdrawn, or settled not included): cancel every
    in-flight trade stacked on it that simulate did not prove pays without it. Returns the
    bundle ids cancelled; each is marked withdrawn (nothing new is sent on top of it)."""
    base = sub.ledger.trade_for(failed)
    lane = sub.lanes[0] if base is None else sub.lane_of(base)  # what stands on it is there too
    stacked: list[Stacked] = []
    for tx in sub.ledger.unresolved():
        if sub.lane_of(tx) is not lane:
            continue
        bundle = sub.ledger.bundle(tx.bundle_id) if tx.kind == "trade" else None
        if bundle is None or not bundle.after_bundles:
            continue
        out = tx.bundle_id in sub.withdrawn or any(
            t.kind == "cancel" for t in sub.ledger.txs_of(tx.bundle_id)
        )
        after = frozenset(bundle.after_bundles)
        stacked.append(Stacked(tx.bundle_id, tx.nonce, after, bundle.pays_alone, out))
    if not any(failed in s.after for s in stacked):
        return []
    if mined_nonce is None:
        try:
            mined_nonce = int(
                await sub.pool.call("eth_getTransactionCount", [lane.address, "latest"]), 16
            )
        except RpcError as exc:  # a cancel of a mined nonce is refused by the node: harmless
            log.warning(
                "nonce read before stacked cancels failed", extra={"fields": {"error": str(exc)}}
            )
            mined_nonce = 0
    bases = {b for s in stacked for b in s.after}
    gone = {b for b in bases if b in sub.withdrawn or _not_included(sub, b)}
    ids = stacked_to_cancel(failed, stacked, mined_nonce=mined_nonce, gone=gone)
    for bundle_id in ids:
        sub.withdrawn[bundle_id] = f"stands on our trade {failed}, which will not land"
        trade = sub.ledger.trade_for(bundle_id)
        if trade is None:  # pragma: no cover - listed from the ledger's unresolved trades
            continue
        txs = sub.ledger.txs_of(bundle_id)
        await send_cancel(sub, trade, txs[-1] if txs else trade, f"stacked on {failed}")
    return ids


def _not_included(sub: Submitter, bundle_id: str) -> bool:
    booked = sub.ledger.outcome_for(bundle_id)
    return booked is not None and booked.status != "included"
