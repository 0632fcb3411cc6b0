"""What detect replicas decided on each pending swap, for the stacking exemption. Pure.

Why: with stacking, a swap ahead of a victim does not crowd its backrun when we published a
backrun of that swap (PendingBook.crowded). One detect knows every backrun it published; a
replica knows only its own, so a swap another replica backran crowded the victim here and not
in one detect (h86: with V3 victims two replicas decided 1 crowded / 1 opportunity apart). A
replica therefore keeps every decision it made (a victim, its stream sequence, its backruns,
none included) and learns its peers' on demand (services/detect/peer_bets.py).

Why by stream sequence: one detect judges the victim at sequence s against the book as it
stood then. A replica's reader runs ahead and withdraws a backrun when a later swap dooms it,
possibly one after s; a backrun withdrawn unpublished (`outbid`) is one one detect published
and withdrew later. So each backrun keeps the sequence of the swap that doomed it
(`doomed_at`), and one learned from a peer is checked against the swaps booked between its
victim and s (the book holds exactly those up to s): standing as of s means what one detect
would have had booked when it judged s.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field

# (victim, tip, pools, after, upto) -> whether a booked swap other than the victim, at a stream
# sequence in (after, upto], tips at least `tip` through one of `pools` (PendingBook.swapped)
Swapped = Callable[[str, int, frozenset[str], int, int], bool]


@dataclass(slots=True)
class Bet:
    """One backrun decided on a victim: what it bid, where, at which head, and the stream
    sequence of the swap that doomed it (None: standing as far as this replica knows)."""

    tip: int
    pools: frozenset[str]
    block: int
    doomed_at: int | None = None
    opp_id: str = field(default="", compare=False)  # ours: its opportunity id


@dataclass(slots=True)
class Decision:
    seq: int  # the victim's stream sequence
    bets: list[Bet] = field(default_factory=list)
    mine: bool = True  # decided here (peers may ask), or learned from a peer


@dataclass
class BetLog:
    decided: dict[str, Decision] = field(default_factory=dict)  # victim -> its decision
    _own: dict[str, Bet] = field(default_factory=dict)  # our opportunity id -> its bet

    def published(self, opp_id: str, victim: str, seq: int, bet: Bet) -> None:
        """A backrun of ours on `victim` (stream sequence `seq`); a redelivery replaces it."""
        decision = self.decided.get(victim)
        if decision is None:
            decision = self.decided[victim] = Decision(seq)
        old = self._own.get(opp_id)
        if old is not None:
            decision.bets = [b for b in decision.bets if b is not old]
        bet.opp_id = opp_id
        decision.bets.append(bet)
        self._own[opp_id] = bet

    def doomed(self, opp_id: str, seq: int) -> None:
        """Our backrun `opp_id` was withdrawn: the swap at stream sequence `seq` goes first."""
        bet = self._own.get(opp_id)
        if bet is not None and bet.doomed_at is None:
            bet.doomed_at = seq

    def decide(self, victim: str, seq: int) -> None:
        """This replica has decided `victim` (with the bets `published` gave it, or none)."""
        if victim not in self.decided:
            self.decided[victim] = Decision(seq)

    def learned(self, victim: str, seq: int, bets: Iterable[Bet]) -> None:
        """A peer's decision on `victim` (checked by the caller against the book)."""
        if victim not in self.decided:
            self.decided[victim] = Decision(seq, list(bets), mine=False)

    def standing(self, victim: str, as_of: int, swapped: Swapped) -> bool | None:
        """Whether a backrun of `victim` stood when the swap at `as_of` came (one detect's
        book then); None when nobody's decision on it is known here."""
        decision = self.decided.get(victim)
        if decision is None:
            return None
        for bet in decision.bets:
            if bet.doomed_at is not None and bet.doomed_at <= as_of:
                continue
            if not swapped(victim, bet.tip, bet.pools, decision.seq, as_of):
                return True
        return False

    def on_block(self, number: int, pending: Container[str], carry: int) -> None:
        """As the book forgets backruns at a block (PendingBook.on_block): one whose victim
        missed the block stays up to `carry` blocks; decisions on swaps no longer pending go
        (they are no longer ahead of anything)."""
        for victim in [v for v in self.decided if v not in pending]:
            for bet in self.decided.pop(victim).bets:
                self._forget(bet)
        for decision in self.decided.values():
            gone = [b for b in decision.bets if b.block < number - carry]
            for bet in gone:
                decision.bets.remove(bet)
                self._forget(bet)

    def _forget(self, bet: Bet) -> None:
        if self._own.get(bet.opp_id) is bet:
            del self._own[bet.opp_id]
