"""Pending router swaps detect has seen, to tell when a backrun would be crowded.

A backrun bids its victim's own fees (services/submit/fees.py): a tie, which arrival decides, so
every pending swap seen before it tipping at least as much is ordered ahead of it in the block
(a later one tipping the same is booked so too: whether ours reached the node first is not
known here); if one of those touches a pool of our cycle, the state our
trade was proven on will not be the state it meets, and it reverts (gas lost). Such backruns
are dropped (counted); the block-triggered search picks the arbitrage up after the block.
Entries leave when their swap shows up in a block's logs, or after `max_age_blocks`, or, after
a gap in the block stream, when their sender's nonce at the head says they were mined
(`forget_mined`: services/detect/gap.py).

Why indexed: at thousands of pending swaps a second the book holds thousands of entries, and a
scan per check made detect O(pending) per swap. Entries are indexed by sender (the nonce
check) and, per pool, in a max-heap of tips with lazy deletion (the crowding check), so each
check costs O(log n) in the entries behind it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mev_common.messages import PendingTx

from services.detect.bet_log import Bet, BetLog

# Blocks a backrun whose victim missed its block stays booked: its deadline (detect's default
# deadline_blocks) after which submit cancels it; services/simulate/stacking.py CARRY_BLOCKS.
BACKRUN_CARRY_BLOCKS = 2


@dataclass
class _Entry:
    pools: frozenset[str]
    tip: int
    seen_block: int
    sender: str = ""
    nonce: int = -1
    tx: PendingTx | None = None  # the whole tx, for a later nonce's backrun to run it first
    seq: int = 0  # its mempool stream sequence (0: not known)


# A booked trade's re-pricing (services/detect/reprice.py `survives`): does it still pay its
# minProfit behind these crowders (tip, hash, whole tx)?
Survives = Callable[[Sequence[tuple[int, str, PendingTx | None]]], bool]


@dataclass(frozen=True)
class _Backrun:
    victim: str
    tip: int
    pools: frozenset[str]
    block: int
    survives: Survives | None = None  # None: any swap ahead through its pools dooms it


@dataclass
class PendingBook:
    max_age_blocks: int = 3
    entries: dict[str, _Entry] = field(default_factory=dict)
    backruns: dict[str, _Backrun] = field(default_factory=dict)  # opportunity id -> what it bet
    _by_sender: dict[str, set[str]] = field(default_factory=dict)
    _by_pool: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # (-tip, hash)
    _heap_items: int = 0
    # swaps booked with no pools since the last block (detect's replay says they revert on the
    # head state) but held whole: behind another swap they may not revert, so a re-priced trade
    # replays them too
    _blind: set[str] = field(default_factory=set)
    # `backruns` by pool (and those booked with `survives`, which a blind swap can doom), each
    # with its place in `backruns`' order: `doomed_by` reads the ones a swap can reach, not all
    _backruns_at: dict[str, set[str]] = field(default_factory=dict)
    _repriced: set[str] = field(default_factory=set)
    _place: dict[str, int] = field(default_factory=dict)
    _placed: int = 0
    _victims: dict[str, int] = field(default_factory=dict)  # victim -> its booked backruns
    # replicas: every decision on a victim, ours and peers', by stream sequence (bet_log.py)
    bets: BetLog | None = None

    def published(
        self,
        opportunity_id: str,
        victim: str,
        tip: int,
        pools: Iterable[str],
        block: int,
        survives: Survives | None = None,
        seq: int = 0,
    ) -> None:
        backrun = _Backrun(victim, tip, frozenset(pools), block, survives)
        if self.bets is not None and victim:
            self.bets.published(opportunity_id, victim, seq, Bet(tip, backrun.pools, block))
        old = self.backruns.get(opportunity_id)
        if old is None:
            self._place[opportunity_id] = self._placed
            self._placed += 1
        else:  # a redelivery: it keeps its place in `backruns`, as a dict's key does
            self._unindex(opportunity_id, old)
        self.backruns[opportunity_id] = backrun
        self._victims[victim] = self._victims.get(victim, 0) + 1
        for pool in backrun.pools:
            self._backruns_at.setdefault(pool, set()).add(opportunity_id)
        if survives is not None:
            self._repriced.add(opportunity_id)

    def _unindex(self, opportunity_id: str, backrun: _Backrun) -> None:
        left = self._victims[backrun.victim] - 1
        if left:
            self._victims[backrun.victim] = left
        else:
            del self._victims[backrun.victim]
        for pool in backrun.pools:
            ids = self._backruns_at[pool]
            ids.discard(opportunity_id)
            if not ids:
                del self._backruns_at[pool]
        self._repriced.discard(opportunity_id)

    def _forget_backrun(self, opportunity_id: str) -> None:
        self._unindex(opportunity_id, self.backruns.pop(opportunity_id))
        del self._place[opportunity_id]

    def doomed_by(self, tx_hash: str, tip: int, touched: Iterable[str], seq: int = 0) -> list[str]:
        """Published trades a newly seen swap will run ahead of, through their pools: they
        would revert; the caller withdraws them (and forgets them here), in the order they were
        booked. A trade booked with `survives` is doomed only when it no longer pays behind
        every swap now ahead of it (the new one must be in the book whole for that: else it is
        doomed). Only the trades through a touched pool are read (or, for a blind swap, those
        with `survives` too): a scan of every live trade cost O(trades) a swap."""
        reached: set[str] = set()
        for pool in frozenset(touched):
            reached.update(self._backruns_at.get(pool, ()))
        blind = tx_hash in self._blind
        if blind:
            reached.update(self._repriced)
        doomed = []
        for opp_id in sorted(reached, key=self._place.__getitem__):
            b = self.backruns[opp_id]
            if b.victim != tx_hash and tip >= b.tip and not self._pays(b, tx_hash):
                doomed.append(opp_id)
        for opp_id in doomed:
            self._forget_backrun(opp_id)
            if self.bets is not None:
                self.bets.doomed(opp_id, seq)
        return doomed

    def _pays(self, b: _Backrun, tx_hash: str) -> bool:
        if b.survives is None or tx_hash not in self.entries:
            return False
        return b.survives(self.ahead_of(b.victim, b.tip, b.pools))

    def ahead_of(
        self, victim: str, tip: int, pools: Iterable[str]
    ) -> list[tuple[int, str, PendingTx | None]]:
        """(tip, hash, whole tx) of every pending swap through `pools` tipping at least `tip`
        (mined before a trade bidding `tip`), but `victim`, by hash; and of every swap booked
        with no pools tipping as much (which pools it takes is the caller's to tell)."""
        found: dict[str, tuple[int, str, PendingTx | None]] = {}
        for pool in sorted(frozenset(pools)):
            for t, tx_hash in self._ahead(pool, tip):
                if tx_hash != victim:
                    found[tx_hash] = (t, tx_hash, self.entries[tx_hash].tx)
        for tx_hash in self._blind:
            entry = self.entries[tx_hash]
            if tx_hash != victim and entry.tip >= tip:
                found[tx_hash] = (entry.tip, tx_hash, entry.tx)
        return [found[h] for h in sorted(found)]

    def add(
        self,
        tx_hash: str,
        pools: Iterable[str],
        tip: int,
        head_block: int,
        sender: str = "",
        nonce: int = -1,
        tx: PendingTx | None = None,
        seq: int = 0,
    ) -> None:
        entry = _Entry(frozenset(pools), tip, head_block, sender, nonce, tx, seq)
        old = self.entries.get(tx_hash)
        self.entries[tx_hash] = entry
        if old is not None and old.sender != sender:
            self._forget_sender(tx_hash, old.sender)
        self._by_sender.setdefault(sender, set()).add(tx_hash)
        if entry.pools or tx is None:
            self._blind.discard(tx_hash)
        else:
            self._blind.add(tx_hash)
        if old is not None and old.pools == entry.pools and old.tip == tip:
            return  # a redelivery: its heap items are still live
        for pool in entry.pools:
            heapq.heappush(self._by_pool.setdefault(pool, []), (-tip, tx_hash))
            self._heap_items += 1

    def _forget_sender(self, tx_hash: str, sender: str) -> None:
        hashes = self._by_sender.get(sender)
        if hashes is not None:
            hashes.discard(tx_hash)
            if not hashes:
                del self._by_sender[sender]

    def _remove(self, tx_hash: str) -> None:
        entry = self.entries.pop(tx_hash, None)
        self._blind.discard(tx_hash)
        if entry is not None:
            self._forget_sender(tx_hash, entry.sender)

    def _live(self, item: tuple[int, str], pool: str) -> bool:
        entry = self.entries.get(item[1])
        return entry is not None and entry.tip == -item[0] and pool in entry.pools

    def _top(self, pool: str, skip: str) -> tuple[int, str] | None:
        """(tip, hash) of the highest-tipping live entry through `pool` other than `skip`."""
        heap = self._by_pool.get(pool)
        while heap and not self._live(heap[0], pool):
            heapq.heappop(heap)
            self._heap_items -= 1
        if not heap:
            return None
        if heap[0][1] != skip:
            return -heap[0][0], heap[0][1]
        mine = heapq.heappop(heap)  # the victim itself tops the pool: look just below it
        while heap and not self._live(heap[0], pool):
            heapq.heappop(heap)
            self._heap_items -= 1
        below = (-heap[0][0], heap[0][1]) if heap else None
        heapq.heappush(heap, mine)
        return below

    def queued_behind(self, victim: str, sender: str, nonce: int) -> str | None:
        """A pending tx of the victim's sender with a lower nonce must be mined first, wherever
        its own fee puts it: the victim's place in the block is then not where its tip says,
        and a backrun bidding that tip could land before the victim."""
        for tx_hash in sorted(self._by_sender.get(sender, ())):
            entry = self.entries[tx_hash]
            if tx_hash != victim and 0 <= entry.nonce < nonce:
                return f"victim waits for {tx_hash} (nonce {entry.nonce}) of the same sender"
        return None

    def queued_txs(self, victim: str, sender: str, nonce: int) -> list[PendingTx] | None:
        """The victim's sender's pending txs with lower nonces, in nonce order, when every one
        is held whole (simulate then runs them before the victim: services/simulate/
        stacking.py); None when one is not. Nonces below the book's are the chain's to say."""
        ahead = []
        for tx_hash in self._by_sender.get(sender, ()):
            entry = self.entries[tx_hash]
            if tx_hash != victim and 0 <= entry.nonce < nonce:
                if entry.tx is None:
                    return None
                ahead.append(entry.tx)
        return sorted(ahead, key=lambda t: t.nonce)

    def senders(self) -> list[str]:
        """The senders of the swaps held with a known nonce (what `forget_mined` can check)."""
        return sorted(
            s for s, hashes in self._by_sender.items()
            if s and any(self.entries[h].nonce >= 0 for h in hashes)
        )  # fmt: skip

    def forget_mined(self, head_nonces: Mapping[str, int]) -> list[str]:
        """Forget the swaps whose nonce their sender has used at the head (`head_nonces`:
        sender -> its transaction count there): each was mined, or another tx of that nonce
        was; either way it is never mined again, so never ahead of a later trade. A swap at or
        above its sender's count is still pending and stays. Returns the hashes forgotten."""
        gone = sorted(
            h for sender, count in head_nonces.items() for h in self._by_sender.get(sender, ())
            if 0 <= self.entries[h].nonce < count
        )  # fmt: skip
        for tx_hash in gone:
            self._remove(tx_hash)
        return gone

    def on_block(self, number: int, mined: Iterable[str]) -> None:
        for tx_hash in mined:
            self._remove(tx_hash)
        # a swap that reverts leaves no log: one that reverted on the last head was most likely
        # mined (reverted) in this block, and replaying it behind later trades dropped ~20x the
        # block trades on the devnet flow (h52's A/B); only this block's are kept blind
        self._blind.clear()
        # a backrun published on an older state is mined or stale by now, unless its victim
        # missed this block: our trade waits in the pool with it (up to its deadline), and a
        # swap ahead of it still dooms it (simulate's stack book carries both the same way)
        for opp_id, b in list(self.backruns.items()):
            missed = b.victim in self.entries and number - b.block <= BACKRUN_CARRY_BLOCKS
            if b.block < number and not missed:
                self._forget_backrun(opp_id)
        if self.bets is not None:
            self.bets.on_block(number, self.entries, BACKRUN_CARRY_BLOCKS)
        stale = [h for h, e in self.entries.items() if e.seen_block < number - self.max_age_blocks]
        for tx_hash in stale:
            self._remove(tx_hash)
        if self._heap_items > 2 * sum(len(e.pools) for e in self.entries.values()) + 64:
            self._rebuild_heaps()

    def _rebuild_heaps(self) -> None:
        """Drop the dead heap items lazy deletion left behind (once per block at most)."""
        self._by_pool = {}
        for tx_hash, entry in self.entries.items():
            for pool in entry.pools:
                self._by_pool.setdefault(pool, []).append((-entry.tip, tx_hash))
        for heap in self._by_pool.values():
            heapq.heapify(heap)
        self._heap_items = sum(len(h) for h in self._by_pool.values())

    def crowded(
        self,
        victim: str,
        victim_tip: int,
        pools: Iterable[str],
        stacking: bool = False,
        as_of: int | None = None,
    ) -> str | None:
        """Why a backrun of `victim` through `pools` would meet another state, if it would.
        With `stacking`, a swap ahead that we published a backrun of, tipping more than the
        victim, does not crowd it: simulate knows that swap and our trade behind it and proves
        this backrun on top of both (services/simulate/stacking.py). A replica (`bets` kept)
        judges the victim at stream sequence `as_of` by every replica's backruns standing then
        (bet_log.py); a swap no decision is known of here crowds it."""
        for tx_hash, tip, exempt in self._crowders(victim, victim_tip, pools, stacking, as_of):
            if not exempt:
                return f"pending {tx_hash} (tip {tip}) swaps through the same pools first"
        return None

    def unknown_crowders(
        self, victim: str, victim_tip: int, pools: Iterable[str], as_of: int
    ) -> list[str]:
        """The swaps crowding a backrun (with stacking) only because no decision on them is
        known here (a peer replica's to tell); none when another swap crowds it anyway."""
        unknown: set[str] = set()
        for tx_hash, _, exempt in self._crowders(victim, victim_tip, pools, True, as_of):
            if exempt is False:
                return []
            if exempt is None:
                unknown.add(tx_hash)
        return sorted(unknown)

    def _crowders(
        self, victim: str, victim_tip: int, pools: Iterable[str], stacking: bool, as_of: int | None
    ) -> Iterator[tuple[str, int, bool | None]]:
        """(hash, tip, exempt) of the swaps ahead of the victim through `pools`, pool by pool:
        exempt True when stacking covers it, None when a peer's decision would tell."""
        for pool in sorted(frozenset(pools)):
            top = self._top(pool, victim)
            if top is None or top[0] < victim_tip:
                continue
            if not stacking:
                yield top[1], top[0], False
                continue
            backrun = self._victims  # the victims of our booked backruns (no scan of them)
            for tip, tx_hash in self._ahead(pool, victim_tip):
                whole = self.entries[tx_hash].tx is not None  # simulate must be able to run it
                if tx_hash == victim:
                    continue
                if tip == victim_tip or not whole:
                    yield tx_hash, tip, False
                elif tx_hash not in backrun:
                    yield tx_hash, tip, self._stood(tx_hash, as_of)

    def _stood(self, tx_hash: str, as_of: int | None) -> bool | None:
        """Whether a backrun of `tx_hash` stood at stream sequence `as_of` (bet_log.py)."""
        if self.bets is None or as_of is None:
            return False
        return self.bets.standing(tx_hash, as_of, self.swapped)

    def swapped(self, victim: str, tip: int, pools: frozenset[str], after: int, upto: int) -> bool:
        """A booked swap but `victim` at a stream sequence in (after, upto] tips at least `tip`
        through one of `pools` (it doomed a backrun bidding `tip` there: `doomed_by`)."""
        for pool in pools:
            for _, tx_hash in self._ahead(pool, tip):
                if tx_hash != victim and after < self.entries[tx_hash].seq <= upto:
                    return True
        return False

    def crowders(self, victim: str, victim_tip: int, pools: Iterable[str]) -> list[PendingTx]:
        """The whole txs of the swaps through `pools` tipping more than the victim (mined
        before it): a stacked backrun's opportunity carries them, so simulate runs them first
        even before it has seen their own backruns."""
        found: dict[str, PendingTx] = {}
        for pool in sorted(frozenset(pools)):
            for _, tx_hash in self._ahead(pool, victim_tip + 1):
                tx = self.entries[tx_hash].tx
                if tx_hash != victim and tx is not None:
                    found[tx_hash] = tx
        return [found[h] for h in sorted(found)]

    def _ahead(self, pool: str, tip: int) -> list[tuple[int, str]]:
        """(tip, hash) of every live entry through `pool` tipping at least `tip` (a walk of the
        heap's top: O(entries found))."""
        heap, out, stack = self._by_pool.get(pool, []), [], [0]
        while stack:
            i = stack.pop()
            if i >= len(heap) or -heap[i][0] < tip:
                continue
            if self._live(heap[i], pool):
                out.append((-heap[i][0], heap[i][1]))
            stack += [2 * i + 1, 2 * i + 2]
        return out
