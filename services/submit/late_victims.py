"""Backruns whose victim was mined without them: withdrawn before they meet another state.

A backrun bids its victim's own fees so that it lands right behind the victim in the
victim's block, on the state simulate proved. When the victim is mined and our trade is not
(it reached the node a moment after the block was sealed), our trade waits in the pool for a
later block and meets that block's state, which nothing proved: at a minProfit a few percent
under the simulated profit it reverts there (gas lost; the cluster chaos test lost one so).
Each tracking pass reads the receipts of in-flight backruns' victims BEFORE our mined nonce:
a victim found mined while the chain has not counted our trade's nonce means our trade was not
in that block (nor before it). It is then withdrawn as detect withdraws a doomed backrun: a
21k-gas cancel on its nonce instead of a ~200k-gas revert, and what stands on it follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.submit.ledger import TxRecord

if TYPE_CHECKING:
    from services.submit.submitter import Submitter


@dataclass(frozen=True)
class InFlightBackrun:
    bundle_id: str
    opportunity_id: str
    nonce: int
    victim: str


def victim_blocks(backruns: list[InFlightBackrun], receipts: Iterable[Any]) -> dict[str, int]:
    """Victim hash -> the block that mined it (status 0 too: its effect is gone either way),
    from eth_getTransactionReceipt replies in `backruns`' order (None: not mined)."""
    out: dict[str, int] = {}
    for b, receipt in zip(backruns, receipts, strict=True):
        if isinstance(receipt, dict) and receipt.get("blockNumber") is not None:
            out[b.victim] = int(receipt["blockNumber"], 16)
    return out


def orphaned(
    backruns: Iterable[InFlightBackrun], mined_at: dict[str, int], mined_nonce: int
) -> list[tuple[str, str]]:
    """(opportunity id, why) of each backrun whose victim is mined while its own nonce is not
    (`mined_nonce` read after the victims' receipts)."""
    return [
        (b.opportunity_id, f"victim {b.victim} mined in block {mined_at[b.victim]} without it")
        for b in backruns
        if b.victim in mined_at and b.nonce >= mined_nonce
    ]


def in_flight(sub: Submitter, txs: list[TxRecord]) -> list[InFlightBackrun]:
    """Our unresolved backrun trades not withdrawn or cancelled yet (those are being
    cancelled already)."""
    cancelling = {t.bundle_id for t in txs if t.kind == "cancel"}
    out = []
    for tx in txs:
        if tx.kind != "trade" or tx.bundle_id in sub.withdrawn or tx.bundle_id in cancelling:
            continue
        bundle = sub.ledger.bundle(tx.bundle_id)
        if bundle is not None and bundle.victim_tx_hash:
            victim = bundle.victim_tx_hash.lower()
            out.append(InFlightBackrun(bundle.id, bundle.opportunity_id, tx.nonce, victim))
    return out


async def victims_mined(sub: Submitter, backruns: list[InFlightBackrun]) -> dict[str, int]:
    if not backruns:
        return {}
    calls = [("eth_getTransactionReceipt", [b.victim]) for b in backruns]
    return victim_blocks(backruns, await sub.pool.call_batch(calls))


async def withdraw_orphans(
    sub: Submitter, backruns: list[InFlightBackrun], mined_at: dict[str, int], mined_nonce: int
) -> int:
    """Withdraw (cancel) every orphaned backrun; how many."""
    found = orphaned(backruns, mined_at, mined_nonce)
    for opportunity_id, why in found:
        await sub.withdraw(opportunity_id, why)
    return len(found)
