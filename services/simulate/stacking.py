"""Backruns stacked on our own pending trades: what a backrun meets in its block. Pure.

Several user swaps through the same pools often land in one block. The first one's backrun (ours,
sent, not mined yet) moves those pools; a second swap's backrun proven on the head alone would
meet another state. So each backrun is proven on the txs the chain will apply before it: every
pending victim and every trade of ours published at this block, in the order a fee-ordered
builder mines them (anvil `--order fees`: highest max fee per gas first among the txs whose
sender's lower nonces are placed; ties in arrival order).

Our trades bid their victim's max fee and one wei under its tip (submit's fees.bundle_fees),
so our backrun ties with its victim on anvil's order and lands right after it (arrival
decides a tie), and a later victim with a lower max fee lands after our earlier trade:
[V1, T1, V2, T2]. A tx bidding the same max fee as
one of ours through its pools is an unsure order (`_unsure`, margin 0 and up).
A victim waiting for a cheaper lower nonce of its sender is not ready until that one is mined:
at the victim's max fee ours would be ready first and go before both (`stack_order`: h96 found
15 of 25 such refusals on the devnet flow would have paid behind their victim). Then ours bids
the least max fee of the txs the victim waits for (`Plan.bid`, carried to submit as
`Bundle.bid_max_fee_per_gas`): a tie with that one (it arrived first), after which the victim,
bidding more, is ready and goes before ours. Refused still (`stack_order`) when that fee leaves
no tip over the next base fee: an unmineable bid is not a trade.
Our trades are mined in fee order among themselves, not in the order we sent them: submit never
sends a trade where an unsettled trade of ours bidding less would make it wait (one lane: it is
refused; nonce lanes, `keys.lanes`: it goes on a lane where none does, services/submit/lanes.py).
Modelling our new trade behind every earlier one (one nonce sequence) proved it behind the victims
bidding between the two, which it then did not meet on another lane (bench's backrun flow, lanes
3: a backrun proven behind a cheaper victim's swap through its pools, landed before it, reverted).

A stack is refused (`superseded`, as before stacking) when the new victim would go before an
earlier trade of ours through the same pools (detect withdraws that trade, so the state is not
known), when two txs whose order matters bid within `margin` of each other (order unsure), or
when `depth` of our trades are already under it. Depth 0 is the behaviour before stacking: a
backrun through a pool of ours at this block is superseded, and runs on [victim] alone.

A new block does not end what is in flight: a victim that missed it (sent just after the block
was built) is still pending, and so is our trade behind it: the chain mines them in fee order
with a backrun of the new block (which submit sends behind it only if it bids no more). So at
each block (`roll`, from the block's logs) the book keeps,
for at most `CARRY_BLOCKS` blocks, our trades whose victim is not among the block's txs, with
that victim; a backrun through their pools is then stacked on them or refused as above, never
proven on the head alone (seen on the devnet: a backrun proven on block 11 alone was mined in
block 12 behind our backrun of a block-10 victim that missed block 11, and reverted). Nothing
else is carried: a victim we did not trade behind, or one that reverted (no logs), would be a
guess; our trades whose victim was mined landed with it (or submit's pool claims refuse a trade
through their pools until they settle). A victim's sender nonce does not tell: the warm EVM
patches pools at a block, not the accounts of the block's senders.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from services.simulate.engine import TxSpec

# Blocks a pending victim and our trade behind it are carried after the block they were booked
# at: a backrun's deadline is its opportunity's block + 2 (detect), after which submit cancels it.
CARRY_BLOCKS = 2


@dataclass(frozen=True)
class Queued:
    """A pending tx as a fee-ordered builder sees it. `bundle_id` marks one of ours."""

    key: str  # victim tx hash, or our bundle id
    sender: str
    max_fee: int  # anvil's ordering key (an EIP-1559 tx's max fee per gas, else its gas price)
    pools: frozenset[str]  # pools it is known to move (lower case)
    tx: TxSpec
    bundle_id: str | None = None
    nonce: int = 0  # a sender's txs are mined in nonce order
    behind: str | None = None  # ours: the victim it backruns (ties it, sent after it)
    block: int = -1  # the block it was booked at (set by the book)


@dataclass(frozen=True)
class Plan:
    """What to run before our new trade (`ahead`, in chain order, the victim last of the txs
    not ours), our trades among them (`after`, bundle ids), and `ahead` without ours (the state
    our trade meets if an earlier trade of ours does not land first). `keys` name `ahead`'s
    txs (hashes; ours by bundle id) for simulate's log: a reverted trade is followed from there
    to what it was proven behind."""

    ahead: tuple[TxSpec, ...]
    after: tuple[str, ...] = ()
    without_ours: tuple[TxSpec, ...] = ()
    keys: tuple[str, ...] = field(default=(), compare=False)  # names, not what runs
    bid: int | None = None  # our max fee, when under our victim's (the module's docstring)

    @property
    def stacked(self) -> bool:
        return bool(self.after)


def _victim_of(q: Queued) -> str | None:
    """The victim a tx of the book belongs to: ours, the one it backruns; else itself."""
    return q.behind if q.bundle_id is not None else q.key


def own_max_fee(
    victim_priority: int, base_fee: int, cap: int, victim_max_fee: int | None = None
) -> int:
    """The max fee submit signs a backrun with (fees.bundle_fees): the victim's max fee, never
    above `cap`; without it (an older bundle), min(cap, 2 x next base + victim's tip - 1),
    estimated at the head's base fee."""
    if victim_max_fee is not None:
        return min(cap, victim_max_fee)
    priority = max(victim_priority - 1, 1)
    return min(cap, 2 * base_fee + min(priority, max(cap - base_fee, 0)))


def next_base_bound(base_fee: int) -> int:
    """The most the next block's base fee can be (EIP-1559: +1/8 at most, at least 1 wei)."""
    return base_fee + max(base_fee // 8, 1)


def chain_order(txs: Sequence[Queued]) -> list[Queued]:
    """`txs` (in arrival order) as a fee-ordered builder mines them: of each sender's txs only
    the lowest nonce is ready; the ready one with the highest max fee goes next, the earliest
    arrival on a tie. Ours (`bundle_id` set) wait for no nonce: submit keeps them in fee order
    (the module's docstring)."""
    waiting = list(enumerate(txs))
    out: list[Queued] = []
    while waiting:
        ready: dict[str, tuple[int, int, Queued]] = {}  # sender -> (position, arrival, tx)
        for pos, (arrival, q) in enumerate(waiting):
            sender = q.sender.lower() if q.bundle_id is None else f"ours:{q.key}"
            held = ready.get(sender)
            if held is None or q.nonce < held[2].nonce:
                ready[sender] = (pos, arrival, q)
        pos, _, best = max(ready.values(), key=lambda r: (r[2].max_fee, -r[1]))
        out.append(best)
        del waiting[pos]
    return out


@dataclass
class StackBook:
    """The pending txs simulate knows at the current block: the victims of the backruns it
    simulated and the trades it published (ours), in arrival order. A new block clears it, but
    for what `roll` carries (still pending, with our trades behind it)."""

    depth: int
    margin: int = 0  # max fees closer than this are an unsure order (our fee is an estimate)
    bid_under: bool = False  # bid behind a victim's cheaper lower nonces (`Plan.bid`); else refuse
    block: int = -1
    entries: list[Queued] = field(default_factory=list)
    seq: int = 0  # our trades in publish order across blocks: submit's nonces are in that order

    def _at(self, block: int) -> bool:
        """Move to `block`; False for an older one (its txs are not tracked any more)."""
        if block > self.block:
            self.block, self.entries = block, []
        return block == self.block

    def roll(self, block: int, mined: Collection[str]) -> None:
        """Move to a newer `block` whose txs (those with logs) are `mined` (lower-case hashes),
        keeping, from the last `CARRY_BLOCKS` blocks, our trades whose victim is not among them,
        with that victim (still pending: it missed its block, and so did our trade)."""
        if block <= self.block:
            return
        recent = [q for q in self.entries if block - q.block <= CARRY_BLOCKS]
        ours = [q for q in recent if q.bundle_id is not None and q.behind is not None]
        waiting = {q.behind.lower() for q in ours if q.behind is not None} - set(mined)
        self.block = block
        self.entries = [q for q in recent if (_victim_of(q) or "").lower() in waiting]

    def saw(self, block: int, victim: Queued) -> None:
        if not self._at(block):
            return
        for i, q in enumerate(self.entries):
            if q.key == victim.key:  # another cycle through the same victim: more pools
                self.entries[i] = replace(q, pools=q.pools | victim.pools)
                return
        self.entries.append(replace(victim, block=block))

    def forget(self, block: int, key: str) -> None:
        """A victim that fails on the head alone will not move anything: never run it ahead."""
        if block == self.block:
            self.entries = [q for q in self.entries if q.key != key]

    def took(self, block: int, ours: Queued) -> None:
        """Our published trade; its `nonce` is its place among ours (`seq`), as submit's."""
        if self._at(block):
            self.entries.append(replace(ours, nonce=self.seq, block=block))
            self.seq += 1

    def plan(
        self,
        block: int,
        victim: Queued,
        ours: Queued,
        head_nonce: int,
        nonce_at_head: Callable[[str], int] | None = None,
        least_fee: int = 0,
    ) -> Plan | str:
        """What our backrun of `victim` meets, or why it must not be simulated (a reason).
        `head_nonce` is the victim's sender's nonce at the head: a victim behind lower nonces
        of its sender is `victim_queued` unless every one of them is a victim known here (the
        chain then mines them first, and so does the plan). `nonce_at_head` (a sender's nonce
        at the head) leaves out a known tx whose nonce the head has used: it is mined, its
        effect is in the state already, and run again (simulate runs txs without a nonce check)
        it would be counted twice. `least_fee` is the least max fee our trade may bid and still
        be mined (the next base fee + 1 wei): a bid under the victim's lower nonces' fees below
        it is refused."""
        if block != self.block or self.depth == 0:
            if self.depth == 0 and block == self.block and self._ours_through(ours.pools):
                return "superseded"
            alone = (victim.tx,)
            plain = Plan(alone, (), alone, (victim.key,))
            return plain if victim.nonce == head_nonce else "victim_queued"
        # a redelivered opportunity finds its own bundle here: never stack on itself
        known = [
            q
            for q in self.entries
            if q.key not in (victim.key, ours.key)
            and (
                q.bundle_id is not None
                or nonce_at_head is None
                or q.nonce >= nonce_at_head(q.sender)
            )
        ]
        same = {q.nonce for q in known if q.sender.lower() == victim.sender.lower()}
        if victim.nonce < head_nonce or not same >= set(range(head_nonce, victim.nonce)):
            return "victim_queued"
        waits = [q for q in known if _waited(q, victim, head_nonce)]
        bid = min((q.max_fee for q in waits), default=ours.max_fee)
        lowered = bid if bid < ours.max_fee and self.bid_under else None
        if lowered is not None:  # ours would be ready while the victim waits: bid under them
            if lowered < least_fee:
                return "stack_order"  # no mineable bid lands behind its victim
            ours = replace(ours, max_fee=lowered)
        # in arrival order, the victim where it came (ours tie with their victims: arrival decides)
        ids = {id(q) for q in known}
        arrived = [victim if q.key == victim.key else q for q in self.entries
                   if id(q) in ids or q.key == victim.key]  # fmt: skip
        order = chain_order([*arrived, *([] if victim in arrived else [victim]), ours])
        first, mine = order.index(victim), order.index(ours)
        if first > mine:
            return "stack_order"  # would go before its victim: never a front-run
        moved = ours.pools | victim.pools
        between = order[first + 1 : mine]
        # our trade behind another victim that goes first: detect withdraws it (state unknown);
        # ours behind this same victim (a follow-on backrun, detect/follow_on.py) is known
        if any(
            q.bundle_id is not None and q.pools & moved and q.behind != victim.key for q in between
        ):
            return "superseded"
        # ours would go before an earlier trade of ours through its pools: that one's state
        # changes (submit refuses the pool while it is in flight; detect withdraws it)
        if any(q.bundle_id is not None and q.pools & ours.pools for q in order[mine + 1 :]):
            return "superseded"
        if self._unsure(order, victim, head_nonce):
            return "stack_order_unsure"
        ahead = order[:mine]
        stacked = [q.bundle_id for q in ahead if q.bundle_id is not None and q.pools & moved]
        if len(stacked) > self.depth:
            return "superseded"
        return Plan(
            tuple(q.tx for q in ahead),
            tuple(b for b in stacked if b is not None),
            tuple(q.tx for q in ahead if q.bundle_id is None),
            tuple(q.key for q in ahead),
            lowered,
        )

    def _ours_through(self, pools: frozenset[str]) -> bool:
        return any(q.bundle_id is not None and q.pools & pools for q in self.entries)

    def _unsure(self, order: Sequence[Queued], victim: Queued, head_nonce: int) -> bool:
        """Two txs of different senders, one of them ours or the victim, through common pools,
        whose max fees are within `margin`: their order in the block is a guess (a backrun
        and its own victim excepted: that order is the backrun's bid, as without stacking; so
        are our new trade and a tx its victim waits for: after the victim, it is after that)."""
        keys = [q for q in order if q.bundle_id is not None or q is victim]
        for a in keys:
            for b in order:
                if a is b or a.sender.lower() == b.sender.lower() or not a.pools & b.pools:
                    continue
                if a.behind == b.key or b.behind == a.key:
                    continue  # a backrun and its own victim: decided by submit's bid
                if a.behind == victim.key and _waited(b, victim, head_nonce):
                    continue
                if abs(a.max_fee - b.max_fee) <= self.margin:
                    return True
        return False


def _waited(q: Queued, victim: Queued, head_nonce: int) -> bool:
    """`q` is a lower nonce of the victim's sender, pending at the head: the victim waits."""
    same = q.bundle_id is None and q.sender.lower() == victim.sender.lower()
    return same and head_nonce <= q.nonce < victim.nonce
