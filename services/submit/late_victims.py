"""Backruns whose victim was mined without them: withdrawn before they meet another state.

A backrun bids its victim's own fees so that it lands right behind the victim in the
victim's block, on the state simulate proved. When the victim is mined and our trade is not
(it reached the node a moment after the block was sealed), our trade waits in the pool for a
later block and meets that block's state, which nothing proved: at a minProfit a few percent
under the simulated profit it reverts there (gas lost; the cluster chaos test lost one so).
Each tracking pass reads the receipts of in-flight backruns' victims BEFORE our mined nonce
(their bundles come from the lane's TradeBundles, read from the ledger once each):
a victim found mined while the chain has not counted our trade's nonce means our trade was not
in that block (nor before it). It is then withdrawn as detect withdraws a doomed backrun: a
21k-gas cancel on its nonce instead of a ~200k-gas revert, and what stands on it follows.
A victim its sender replaced (another tx on its nonce: a speed-up or a cancel) never gets a
receipt; the same pass reads the sender's mined nonce, and a count past the victim's nonce
with no receipt means it never will: our trade is withdrawn the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mev_common.messages import Bundle

from services.submit.ledger_records import TxRecord

if TYPE_CHECKING:
    from services.submit.submitter import Submitter


@dataclass(frozen=True)
class InFlightBackrun:
    bundle_id: str
    opportunity_id: str
    nonce: int
    victim: str
    victim_sender: str | None = None  # bundles from before the field: receipts only
    victim_nonce: int | None = None


REPLACED = -1  # victim_blocks' block for a victim whose sender used its nonce on another tx


def victim_blocks(
    backruns: list[InFlightBackrun], receipts: Iterable[Any], counts: Iterable[Any] = ()
) -> dict[str, int]:
    """Victim hash -> the block that mined it (status 0 too: its effect is gone either way),
    from eth_getTransactionReceipt replies in `backruns`' order (None: not mined); REPLACED for
    one without a receipt whose sender's mined nonce count (`counts`: eth_getTransactionCount
    replies, in the order of `with_sender(backruns)`) is past its nonce."""
    out: dict[str, int] = {}
    for b, receipt in zip(backruns, receipts, strict=True):
        if isinstance(receipt, dict) and receipt.get("blockNumber") is not None:
            out[b.victim] = int(receipt["blockNumber"], 16)
    for b, count in zip(with_sender(backruns), counts, strict=True):
        if (
            b.victim not in out
            and isinstance(count, str)
            and int(count, 16) > (b.victim_nonce or 0)
        ):
            out[b.victim] = REPLACED
    return out


def with_sender(backruns: list[InFlightBackrun]) -> list[InFlightBackrun]:
    return [b for b in backruns if b.victim_sender is not None and b.victim_nonce is not None]


def orphaned(
    backruns: Iterable[InFlightBackrun], mined_at: dict[str, int], mined_nonce: int
) -> list[tuple[str, str]]:
    """(opportunity id, why) of each backrun whose victim is mined while its own nonce is not
    (`mined_nonce` read after the victims' receipts)."""
    return [
        (b.opportunity_id, why_orphaned(b, mined_at[b.victim]))
        for b in backruns
        if b.victim in mined_at and b.nonce >= mined_nonce
    ]


def why_orphaned(b: InFlightBackrun, block: int) -> str:
    if block == REPLACED:
        return f"victim {b.victim} replaced by its sender (nonce {b.victim_nonce} used)"
    return f"victim {b.victim} mined in block {block} without it"


def in_flight(
    sub: Submitter, txs: list[TxRecord], bundles: Mapping[str, Bundle]
) -> list[InFlightBackrun]:
    """Our unresolved backrun trades not withdrawn or cancelled yet (those are being
    cancelled already); `bundles`: the trades' bundles (trade_bundles.py)."""
    cancelling = {t.bundle_id for t in txs if t.kind == "cancel"}
    out = []
    for tx in txs:
        if tx.kind != "trade" or tx.bundle_id in sub.withdrawn or tx.bundle_id in cancelling:
            continue
        bundle = bundles.get(tx.bundle_id)
        if bundle is not None and bundle.victim_tx_hash:
            victim = bundle.victim_tx_hash.lower()
            out.append(
                InFlightBackrun(
                    bundle.id,
                    bundle.opportunity_id,
                    tx.nonce,
                    victim,
                    bundle.victim_sender,
                    bundle.victim_nonce,
                )
            )
    return out


async def victims_mined(sub: Submitter, backruns: list[InFlightBackrun]) -> dict[str, int]:
    if not backruns:
        return {}
    calls: list[tuple[str, list[Any]]] = [
        ("eth_getTransactionReceipt", [b.victim]) for b in backruns
    ]
    calls += [
        ("eth_getTransactionCount", [b.victim_sender, "latest"]) for b in with_sender(backruns)
    ]
    replies = await sub.pool.call_batch(calls)
    return victim_blocks(backruns, replies[: len(backruns)], replies[len(backruns) :])


async def withdraw_orphans(
    sub: Submitter, backruns: list[InFlightBackrun], mined_at: dict[str, int], mined_nonce: int
) -> int:
    """Withdraw (cancel) every orphaned backrun; how many."""
    found = orphaned(backruns, mined_at, mined_nonce)
    for opportunity_id, why in found:
        await sub.withdraw(opportunity_id, why)
    return len(found)
