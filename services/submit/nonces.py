"""The bot address's nonces, held locally so the hot path never asks the chain.

Synced from the chain's pending count at start and on `nonce_reset`; every nonce handed out
stays "in flight" until its tx (or the cancel that replaced it) is mined or known dropped. The
number in flight never exceeds `submit.max_in_flight` (HyperEVM keeps at most the next 8 nonces
of an address pending: a ninth would be refused or silently lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class NoNonceFree(Exception):
    """`max_in_flight` nonces are unconfirmed: sending another would exceed what the chain keeps."""


@dataclass
class NonceManager:
    max_in_flight: int
    next_nonce: int = 0
    in_flight: set[int] = field(default_factory=set)
    synced: bool = False
    chain_count: int = 0  # the chain's count of our txs, as last read (sync, confirmed_up_to)

    def sync(
        self,
        chain_pending: int,
        unresolved: set[int] | frozenset[int] = frozenset(),
        mined: int = 0,
    ) -> None:
        """Adopt the chain's pending count; keep tracking nonces of our unresolved txs.

        The next nonce is past every unresolved one we know of, so a tx that was recorded but
        whose broadcast the node may not have seen is never given a second meaning; and never
        below `mined`, past the highest nonce our own receipts show mined in blocks the
        counting node has not reached: a node that lags (a backrun went to its victim's node
        alone, and mined) counts one less, and the next trade, on a nonce already used, would
        be refused ("nonce too low")."""
        self.in_flight = {n for n in unresolved if n >= 0}
        counted = max(chain_pending, mined)
        self.next_nonce = max([counted, *(n + 1 for n in self.in_flight)])
        self.chain_count = max(self.chain_count, mined, min([counted, *self.in_flight]))
        self.synced = True

    def blocked(self) -> str | None:
        """Why `take` would fail now, or None."""
        if not self.synced:
            return "nonces not synced with the chain yet"
        if len(self.in_flight) >= self.max_in_flight:
            return f"{len(self.in_flight)} txs unconfirmed (max_in_flight)"
        if self.next_nonce >= self.chain_count + self.max_in_flight:
            # HyperEVM keeps only the next 8 nonces: never sign one further ahead of the chain
            return (
                f"nonce {self.next_nonce} would be {self.next_nonce - self.chain_count + 1} "
                f"ahead of the chain's count {self.chain_count} (max_in_flight)"
            )
        return None

    def take(self) -> int:
        """The next nonce; it counts as in flight until `release`."""
        if (why := self.blocked()) is not None:
            raise NoNonceFree(why)
        nonce = self.next_nonce
        self.next_nonce += 1
        self.in_flight.add(nonce)
        return nonce

    def give_back(self, nonce: int) -> None:
        """Undo a `take` whose tx never left this process (dry run, refused before sending)."""
        self.in_flight.discard(nonce)
        if nonce == self.next_nonce - 1:
            self.next_nonce = nonce

    def hold(self, nonce: int) -> None:
        """A tx of ours on `nonce` is unresolved again (its receipt's block was reorged out):
        in flight, and the next nonce past it, as `sync` would have it."""
        self.in_flight.add(nonce)
        self.next_nonce = max(self.next_nonce, nonce + 1)

    def release(self, nonce: int) -> None:
        """The nonce is settled on chain (mined by our tx, our cancel or anything else)."""
        self.in_flight.discard(nonce)

    def confirmed_up_to(self, chain_latest: int) -> None:
        """Every nonce below the chain's mined count is settled, whoever used it."""
        self.in_flight = {n for n in self.in_flight if n >= chain_latest}
        self.next_nonce = max(self.next_nonce, chain_latest)
        self.chain_count = max(self.chain_count, chain_latest)
