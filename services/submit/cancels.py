"""Cancelling a trade: a 0-value self-transfer on its nonce at a higher fee.

Used when a trade passed its deadline block unmined, or detect withdrew it (it would revert).
A cancel is capped by the strategy's max gas price and by max_cancels_per_nonce, and an
emergency stop holds cancels too: nothing at all leaves the process while it is on.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from services.submit.fees import FeeRefusal, Fees, capped_cancel_fees
from services.submit.ledger import TxRecord
from services.submit.sender import Verdict

if TYPE_CHECKING:
    from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")

CANCEL_GAS = 21_000


async def send_cancel(
    sub: Submitter, trade: TxRecord, last: TxRecord, why: str = "past deadline"
) -> None:
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
    tx = {
        "type": 2,
        "chainId": sub.chain_id,
        "nonce": trade.nonce,
        "to": sub.signer.address,
        "value": 0,
        "data": "0x",
        "gas": CANCEL_GAS,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
    }
    raw, tx_hash = sub.signer.sign(tx)
    record = TxRecord(
        hash=tx_hash,
        bundle_id=trade.bundle_id,
        kind="cancel",
        nonce=trade.nonce,
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        gas_limit=CANCEL_GAS,
        deadline_block=trade.deadline_block,
        raw="0x" + raw.hex(),
        state="signed",
        created_at=time.time(),
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


def _cancel_refusal(sub: Submitter, trade: TxRecord) -> str | None:
    sent = sum(1 for t in sub.ledger.txs_of(trade.bundle_id) if t.kind == "cancel")
    if sent >= sub.cfg.max_cancels_per_nonce:
        return f"{sent} cancels already sent for nonce {trade.nonce} (max_cancels_per_nonce)"
    return None
