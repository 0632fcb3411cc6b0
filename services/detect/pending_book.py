"""Pending router swaps detect has seen, to tell when a backrun would be crowded.

A backrun bids one wei below its victim's tip, so every pending swap tipping at least as much is
ordered ahead of it in the block; if one of those touches a pool of our cycle, the state our
trade was proven on will not be the state it meets, and it reverts (gas lost). Such backruns
are dropped (counted); the block-triggered search picks the arbitrage up after the block.
Entries leave when their swap shows up in a block's logs, or after `max_age_blocks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mev_common.messages import PendingTx


def effective_tip(tx: PendingTx, base_fee: int) -> int:
    """What the tx pays the block builder per gas at `base_fee` (its fee-ordering key)."""
    if tx.max_priority_fee_per_gas is not None:
        cap = tx.max_fee_per_gas if tx.max_fee_per_gas is not None else None
        tip = tx.max_priority_fee_per_gas
        return max(0, min(tip, cap - base_fee)) if cap is not None else tip
    if tx.gas_price is not None:
        return max(0, tx.gas_price - base_fee)
    return 0


@dataclass
class _Entry:
    pools: frozenset[str]
    tip: int
    seen_block: int


@dataclass
class PendingBook:
    max_age_blocks: int = 3
    entries: dict[str, _Entry] = field(default_factory=dict)

    def add(self, tx_hash: str, pools: Iterable[str], tip: int, head_block: int) -> None:
        self.entries[tx_hash] = _Entry(frozenset(pools), tip, head_block)

    def on_block(self, number: int, mined: Iterable[str]) -> None:
        for tx_hash in mined:
            self.entries.pop(tx_hash, None)
        stale = [h for h, e in self.entries.items() if e.seen_block < number - self.max_age_blocks]
        for tx_hash in stale:
            del self.entries[tx_hash]

    def crowded(self, victim: str, victim_tip: int, pools: Iterable[str]) -> str | None:
        """Why a backrun of `victim` through `pools` would meet another state, if it would."""
        wanted = frozenset(pools)
        for tx_hash, entry in self.entries.items():
            if tx_hash != victim and entry.tip >= victim_tip and entry.pools & wanted:
                return f"pending {tx_hash} (tip {entry.tip}) swaps through the same pools first"
        return None
