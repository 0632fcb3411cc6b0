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
    sender: str = ""
    nonce: int = -1


@dataclass(frozen=True)
class _Backrun:
    victim: str
    tip: int
    pools: frozenset[str]
    block: int


@dataclass
class PendingBook:
    max_age_blocks: int = 3
    entries: dict[str, _Entry] = field(default_factory=dict)
    backruns: dict[str, _Backrun] = field(default_factory=dict)  # opportunity id -> what it bet

    def published(
        self, opportunity_id: str, victim: str, tip: int, pools: Iterable[str], block: int
    ) -> None:
        self.backruns[opportunity_id] = _Backrun(victim, tip, frozenset(pools), block)

    def doomed_by(self, tx_hash: str, tip: int, touched: Iterable[str]) -> list[str]:
        """Published backruns a newly seen swap will run ahead of, through their pools: they
        would revert; the caller withdraws them (and forgets them here)."""
        hit = frozenset(touched)
        doomed = [
            opp_id
            for opp_id, b in self.backruns.items()
            if b.victim != tx_hash and tip >= b.tip and b.pools & hit
        ]
        for opp_id in doomed:
            del self.backruns[opp_id]
        return doomed

    def add(
        self,
        tx_hash: str,
        pools: Iterable[str],
        tip: int,
        head_block: int,
        sender: str = "",
        nonce: int = -1,
    ) -> None:
        self.entries[tx_hash] = _Entry(frozenset(pools), tip, head_block, sender, nonce)

    def queued_behind(self, victim: str, sender: str, nonce: int) -> str | None:
        """A pending tx of the victim's sender with a lower nonce must be mined first, wherever
        its own fee puts it: the victim's place in the block is then not where its tip says,
        and a backrun bid just below that tip could land before the victim."""
        for tx_hash, entry in self.entries.items():
            if tx_hash != victim and entry.sender == sender and 0 <= entry.nonce < nonce:
                return f"victim waits for {tx_hash} (nonce {entry.nonce}) of the same sender"
        return None

    def on_block(self, number: int, mined: Iterable[str]) -> None:
        for tx_hash in mined:
            self.entries.pop(tx_hash, None)
        # a backrun published on an older state is mined or stale by now
        for opp_id in [o for o, b in self.backruns.items() if b.block < number]:
            del self.backruns[opp_id]
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
