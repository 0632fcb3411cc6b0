"""What to do next with a sent trade: pure, from its txs, their receipts and the chain's nonce.

A trade is settled by whichever tx used its nonce: the trade itself (included or reverted), our
0-value cancel (replaced), or something else (replaced, by another tx with that nonce). Once its
deadline block is mined without it, it is never left to land stale: a cancel takes the nonce.
A cancel is never re-sent forever: once the node knows neither tx, or the nonce sits above the
chain's count with no tx of ours below it (after a chain reset or a reorg nothing can ever fill
that gap), the trade is resolved as dropped and its nonce freed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.submit.ledger_records import TxRecord

SettleStatus = Literal["included", "reverted", "replaced", "dropped"]


@dataclass(frozen=True)
class Wait:
    pass


@dataclass(frozen=True)
class Cancel:
    """Replace the trade's nonce with a 0-value self-transfer at a higher fee."""

    last: TxRecord  # the tx (trade or earlier cancel) whose fees must be outbid


@dataclass(frozen=True)
class Settle:
    status: SettleStatus
    mined: TxRecord | None  # the tx of ours that used the nonce, if any
    receipt: dict[str, Any] | None
    reason: str


@dataclass(frozen=True)
class CheckPool:
    """Every tx of this trade is old and unmined: ask the node whether it still has any."""


Step = Wait | Cancel | Settle | CheckPool


def next_step(
    trade: TxRecord,
    cancels: list[TxRecord],
    receipts: dict[str, dict[str, Any] | None],
    *,
    head: int,
    mined_nonce: int,
    now: float,
    receipt_timeout_s: float,
    withdrawn: bool = False,
    why: str = "",
) -> Step:
    """`receipts` maps each tx hash to its receipt (None: not mined); `mined_nonce` is the
    chain's confirmed tx count of our address, read before the receipts. A `withdrawn` trade
    (it would meet another state) with no cancel out yet is cancelled before its deadline: the
    retry when the cancel at withdrawal was not sent (emergency stop, RPC down). `why` it was
    withdrawn ends the outcome's reason."""
    mined = receipts.get(trade.hash)
    if mined is not None:
        ok = int(mined.get("status", "0x0"), 16) == 1
        return Settle("included" if ok else "reverted", trade, mined, "" if ok else "reverted")
    for cancel in cancels:
        receipt = receipts.get(cancel.hash)
        if receipt is not None:
            cause = "withdrawn" if withdrawn else f"past deadline block {trade.deadline_block}"
            return Settle(
                "replaced",
                cancel,
                receipt,
                f"cancelled ({cause}): nonce {trade.nonce} "
                f"used by our 0-value tx {cancel.hash}, trade {trade.hash} never mined"
                + (f": {why}" if withdrawn and why else ""),
            )
    if mined_nonce > trade.nonce:
        return Settle(
            "replaced", None, None, f"nonce {trade.nonce} used by a tx not from this submitter"
        )
    if head < trade.deadline_block and not (withdrawn and not cancels):
        return Wait()
    if not cancels:
        return Cancel(trade)
    last = cancels[-1]
    if now - (last.sent_at or last.created_at) >= receipt_timeout_s:
        return CheckPool()
    return Wait()


def after_pool_check(
    trade: TxRecord,
    cancels: list[TxRecord],
    *,
    known: bool,
    mined_nonce: int,
    held_nonces: set[int],
    receipt_timeout_s: float,
) -> Settle | Cancel:
    """`CheckPool`'s answer: `known` if the node still has the trade or a cancel of it;
    `held_nonces` are the nonces of all our unresolved txs."""
    if not known:
        return Settle(
            "dropped",
            None,
            None,
            f"neither trade {trade.hash} nor its cancel is mined or known to the node after "
            f"{receipt_timeout_s} s: nonce {trade.nonce} freed (chain count {mined_nonce})",
        )
    below = any(mined_nonce <= n < trade.nonce for n in held_nonces)
    if trade.nonce > mined_nonce and not below:
        return Settle(
            "dropped",
            None,
            None,
            f"nonce {trade.nonce} is above the chain's count {mined_nonce} with no tx of ours "
            f"below it: trade {trade.hash} can never be mined; nonce freed",
        )
    return Cancel(cancels[-1] if cancels else trade)  # still pending: outbid it again
