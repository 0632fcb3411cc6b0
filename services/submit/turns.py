"""Whose turn at submit's gate: one bundle at a time, a backrun before queued block bundles.

The gate (checks, lane, nonce, signature, the signed tx's commit) runs for one bundle at a
time: nonces are sequential per lane and the loss limits must see every signed tx before the
next decision. The broadcast's answer is awaited after the turn (submitter.py), so several
bundles are in submit at once (the consumer pulls a few) and some wait here for the gate.

Among those waiting, a pending-swap backrun goes first: its value is its latency (a rival
reacts within ~10 ms), while a block bundle's race is the next block. Within a kind, arrival
order. A bundle never passes one it was proven on top of (`Bundle.after_bundles`): that one
must be in flight first, as simulate proved. The choice is pure (`next_turn`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from mev_common.messages import Bundle, trigger_kind


@dataclass(frozen=True)
class Waiting:
    """A bundle waiting for its turn."""

    seq: int  # arrival order
    bundle_id: str
    backrun: bool  # a pending-swap trigger
    after: frozenset[str] = frozenset()  # our trades it was proven on top of


def next_turn(waiting: Sequence[Waiting]) -> Waiting | None:
    """The waiter whose turn is next: the earliest backrun that waits for no earlier waiter it
    stands on, else the earliest of all (which stands on no earlier one)."""
    if not waiting:
        return None
    ordered = sorted(waiting, key=lambda w: w.seq)
    for w in ordered:
        if w.backrun and not any(o.bundle_id in w.after for o in ordered if o.seq < w.seq):
            return w
    return ordered[0]


@dataclass
class Turns:
    """The gate's lock, handed to `next_turn`'s choice on release (FIFO asyncio.Lock order
    otherwise)."""

    busy: bool = False
    waiting: dict[int, tuple[Waiting, asyncio.Future[None]]] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    @contextlib.asynccontextmanager
    async def turn(self, bundle: Bundle) -> AsyncIterator[None]:
        if self.busy or self.waiting:
            await self._wait(bundle)
        else:
            self.busy = True
        try:
            yield
        finally:
            self._hand_on()

    async def _wait(self, bundle: Bundle) -> None:
        me = Waiting(
            next(self._seq),
            bundle.id,
            trigger_kind(bundle.victim_tx_hash) == "pending",
            frozenset(bundle.after_bundles),
        )
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[me.seq] = (me, granted)
        try:
            await granted
        except asyncio.CancelledError:
            self.waiting.pop(me.seq, None)
            if granted.done() and not granted.cancelled():
                self._hand_on()  # granted as it was cancelled: the turn passes on
            raise

    def _hand_on(self) -> None:
        chosen = next_turn([w for w, _ in self.waiting.values()])
        if chosen is None:
            self.busy = False
            return
        _, granted = self.waiting.pop(chosen.seq)
        granted.set_result(None)  # busy stays True: the turn is the chosen one's
