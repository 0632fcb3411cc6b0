"""Pending swaps a detect replica has read but not reached yet (replicas share the mempool).

Why: with `services.detect.replicas` > 1 each replica searches only its share of the pending
swaps (the shared durable consumer), yet whether a backrun is crowded depends on every pending
swap, so each replica also reads the whole mempool subject (decode and path, no search). That
reader runs ahead of the searched triggers; had it booked what it read at once, a trigger
would be judged against swaps that came *after* it in the stream (under a backlog, most of
them: with rising tips nearly every backrun was dropped "crowded"), where one detect judges
each swap against the swaps before it. So what the reader reads waits here, in stream order,
and enters the PendingBook only when a trigger at a later stream sequence is searched: the
book then holds exactly what one detect's would. A later swap that outbids a backrun through
its pools (one detect would publish the backrun, then withdraw it when that swap came) makes
the backrun withdrawn before it is published: `outbid` answers that, from a sliding maximum
of tips per pool (O(1) amortized a swap). What the reader books differs from one detect's book
in one way: a swap that would revert enters with its path's pools (the reader does not apply
it), where the replica that searches it, like one detect, books it with none.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from mev_common.messages import PendingTx


@dataclass(frozen=True)
class ReadSwap:
    """One pending swap as the reader booked it: its stream sequence and what the book needs."""

    seq: int
    tx_hash: str
    pools: tuple[str, ...]
    tip: int
    block: int  # booked at when read (Detector.booked_at: the book's age rule)
    sender: str
    nonce: int
    tx: PendingTx | None = None  # whole: stacking runs a crowder we backrun ahead of ours


@dataclass
class ReadAhead:
    """Read swaps by stream sequence, with the highest tip through each pool among them."""

    read_seq: int = 0  # the last stream sequence the reader handled
    queue: deque[ReadSwap] | None = None
    _top: dict[str, deque[tuple[int, int]]] | None = None  # pool -> (tip, seq), tips falling

    def __post_init__(self) -> None:
        self.queue = deque()
        self._top = {}

    def __len__(self) -> int:
        assert self.queue is not None
        return len(self.queue)

    def add(self, swap: ReadSwap) -> None:
        """A swap the reader read (stream order: sequences rise)."""
        assert self.queue is not None and self._top is not None
        self.read_seq = max(self.read_seq, swap.seq)
        self.queue.append(swap)
        for pool in swap.pools:
            top = self._top.setdefault(pool, deque())
            while top and top[-1][0] <= swap.tip:
                top.pop()
            top.append((swap.tip, swap.seq))

    def reached(self, seq: int) -> list[ReadSwap]:
        """Remove and return the swaps at or before `seq` (a trigger there is searched now)."""
        assert self.queue is not None
        out = []
        while self.queue and self.queue[0].seq <= seq:
            swap = self.queue.popleft()
            self._forget(swap)
            out.append(swap)
        return out

    def _forget(self, swap: ReadSwap) -> None:
        assert self._top is not None
        for pool in swap.pools:
            top = self._top.get(pool)
            if top and top[0][1] == swap.seq:
                top.popleft()
            if not top:
                self._top.pop(pool, None)

    def outbid(self, tip: int, pools: Iterable[str]) -> bool:
        """Whether a swap read ahead tips at least `tip` through one of `pools` (a backrun
        bid below `tip` there would revert: one detect would withdraw it when that swap came)."""
        assert self._top is not None
        for pool in pools:
            top = self._top.get(pool)
            if top and top[0][0] >= tip:
                return True
        return False

    def first_outbid(self, tip: int, pools: Iterable[str]) -> int | None:
        """The stream sequence of the first swap read ahead that `outbid`s (a scan: only after
        `outbid` said there is one); None if none does."""
        if not self.outbid(tip, pools):
            return None
        assert self.queue is not None
        wanted = frozenset(pools)
        for swap in self.queue:
            if swap.tip >= tip and not wanted.isdisjoint(swap.pools):
                return swap.seq
        return None

    def drop(self, gone: set[str], before_block: int) -> int:
        """Forget swaps mined (`gone`) or read before `before_block` (the book would have aged
        them out): a replica that gets no trigger for a while must not hold them forever."""
        assert self.queue is not None
        keep = [s for s in self.queue if s.tx_hash not in gone and s.block >= before_block]
        dropped = len(self.queue) - len(keep)
        if dropped:
            self.queue, self._top = deque(), {}
            read = self.read_seq
            for swap in keep:
                self.add(swap)
            self.read_seq = read
        return dropped
