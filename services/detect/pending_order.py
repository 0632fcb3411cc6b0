"""Where a pending tx stands in fee order: its tip, the block it is booked at, and the txs a
backrun's opportunity carries to be run before its victim. Pure (services/detect/pending_book.py
books the swaps by these)."""

from __future__ import annotations

from mev_common.messages import Opportunity, PendingTx


def effective_tip(tx: PendingTx, base_fee: int) -> int:
    """What the tx pays the block builder per gas at `base_fee` (its fee-ordering key)."""
    if tx.max_priority_fee_per_gas is not None:
        cap = tx.max_fee_per_gas if tx.max_fee_per_gas is not None else None
        tip = tx.max_priority_fee_per_gas
        return max(0, min(tip, cap - base_fee)) if cap is not None else tip
    if tx.gas_price is not None:
        return max(0, tx.gas_price - base_fee)
    return 0


def booked_block(head: int, head_seen_s: float, now: float, block_time_s: float) -> int:
    """The block a pending swap seen at `now` is booked at (its `max_age_blocks` count from
    there): our head, or, when our head lags the chain by more than a block by the clock (the
    block stream catching up after a NATS outage while pending swaps arrive live), the block
    the chain is at, less one. Booked at the stale head, a swap sent after the outage aged out
    as the backlog of blocks came in although still pending, and a backrun it went ahead of
    was published without it (the chaos test's NATS restart: it reverted). One block less: a
    swap kept a block longer costs a candidate, one forgotten while pending can cost gas.

    The lag is `now` less `head_seen_s`, when ingest saw our head (its `Mev-Seen-Ns`, our
    clocks), never the head's chain timestamp: a chain clock apart from ours (a node or host
    clock off, a devnet loaded from a state dump runs minutes behind) booked every swap that
    many blocks ahead, kept it that long when it never mined and crowded backruns with it
    (bench's devnet flow after a dump 100 s old: 5x fewer pending opportunities). 0 (an
    older ingest's block, no seen time): our head."""
    if head_seen_s <= 0:
        return head
    behind = int((now - head_seen_s) // block_time_s) - 1
    return head + max(0, behind)


def with_ahead(
    opp: Opportunity, queued: list[PendingTx], crowders: list[PendingTx]
) -> Opportunity | None:
    """`opp` carrying the pending txs mined before its victim (services/simulate/stacking.py);
    None past the 8 an opportunity carries (its state could not be proven: drop it)."""
    ahead = queued + [t for t in crowders if t not in queued]
    if len(ahead) > 8:
        return None
    return opp.model_copy(update={"ahead": ahead}) if ahead else opp
