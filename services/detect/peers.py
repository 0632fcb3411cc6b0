"""A detect replica's reader of the whole mempool (`services.detect.replicas` > 1).

Replicas share the durable mempool consumer, so each pending swap is searched by exactly one of
them; this reader (an ordered consumer per replica, from the stream's end at start) decodes and
books every swap, no search, so crowding and withdrawals see the swaps the others search. What
it reads waits in `ReadAhead` until a trigger at a later stream sequence is searched here
(services/detect/read_ahead.py says why): the book then holds what one detect's would.

A trigger the reader has not reached yet waits for it, at most `READ_WAIT_S` (then it goes on
with the book it has: counted in `behind`, shown in health). Swaps published before the
reader started (`floor`) never wait: the reader will not see them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from mev_common import subjects
from mev_common.bus import Envelope
from mev_common.chain.router_calls import RouterCallError
from mev_common.chain.swap_router_calls import SwapRouterCallError
from mev_common.messages import Opportunity, PeerAnswer, PeerQuestion, PendingTx

from services.detect.bet_log import Bet
from services.detect.peer_bets import PeerBets
from services.detect.pending_book import PendingBook
from services.detect.pending_order import effective_tip
from services.detect.pending_swaps import decode_pending, path_pools
from services.detect.read_ahead import ReadAhead, ReadSwap

if TYPE_CHECKING:
    from services.detect.search import Found
    from services.detect.service import Detector

READ_WAIT_S = 0.05


class PeerReader:
    """Every pending swap of the mempool read into `ahead`, entered into the book in order."""

    def __init__(self, detector: Detector, floor: int = 0) -> None:
        self.d = detector
        self.floor = floor  # the stream's last sequence when the reader started
        self.ahead = ReadAhead()
        self.behind = 0  # triggers that went on before the reader reached them
        self.outbid_unpublished = 0  # backruns withdrawn before publishing (`outbid`)
        self._moved = asyncio.Event()
        self.bets = PeerBets(detector.pending, detector.rt.chain_id, self._send)

    async def _send(self, message: PeerQuestion | PeerAnswer) -> None:
        kind = "questions" if isinstance(message, PeerQuestion) else "answers"
        await self.d.rt.bus.publish_core(subjects.detect_peers(self.d.rt.chain_id, kind), message)

    def listens(self) -> list[tuple[str, Any, Callable[[Any], Awaitable[None]]]]:
        """The core subjects (subject, model, handler) the replicas ask and answer on."""
        chain = self.d.rt.chain_id
        return [
            (subjects.detect_peers(chain, "questions"), PeerQuestion, self.bets.on_question),
            (subjects.detect_peers(chain, "answers"), PeerAnswer, self.bets.on_answer),
        ]

    @property
    def book(self) -> PendingBook:
        return self.d.pending

    async def on_read(self, env: Envelope[PendingTx]) -> None:
        """Every pending tx, in stream order: a swap is held for the book; backruns already
        published that it outbids through their pools are withdrawn now."""
        tx, head = env.message, self.d.head
        if env.seq < self.ahead.read_seq:  # the stream started over (a server lost its store)
            self.ahead = ReadAhead()
        try:
            swap = decode_pending(self.d, tx) if head is not None else None
        except (RouterCallError, SwapRouterCallError):
            swap = None
        if swap is not None and head is not None:
            pools = tuple(path_pools(self.d, swap))
            tip = effective_tip(tx, head.base_fee_per_gas)
            booked = self.d.booked_at(head)  # as one detect books it: the book's age rule
            self.ahead.add(ReadSwap(env.seq, tx.hash, pools, tip, booked, tx.sender, tx.nonce, tx))
            for opp_id in self.book.doomed_by(tx.hash, tip, pools, env.seq):
                await self.d.withdraw(
                    opp_id, f"pending {tx.hash} (tip {tip}) goes first through its pools"
                )
        self.ahead.read_seq = max(self.ahead.read_seq, env.seq)
        self._moved.set()

    async def reach(self, seq: int) -> None:
        """Book every swap read at or before `seq` (a trigger there is searched now), once the
        reader got that far (waited for, bounded)."""
        if seq > self.floor and seq > self.ahead.read_seq:
            await self._wait_for(seq)
        for s in self.ahead.reached(seq):
            self.book.add(s.tx_hash, s.pools, s.tip, s.block, s.sender, s.nonce, s.tx, s.seq)

    async def _wait_for(self, seq: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READ_WAIT_S
        while self.ahead.read_seq < seq:
            left = deadline - loop.time()
            if left <= 0:
                self.behind += 1
                return
            self._moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), left)

    async def crowded(
        self, victim: str, tip: int, pools: Iterable[str], stacking: bool, seq: int
    ) -> str | None:
        """PendingBook.crowded for the victim at stream sequence `seq`, after asking the peers
        about the swaps only their decisions can exempt (services/detect/peer_bets.py)."""
        why = self.book.crowded(victim, tip, pools, stacking, seq)
        if why is None or not stacking:
            return why
        unknown = self.book.unknown_crowders(victim, tip, pools, seq)
        if not unknown:
            return why
        await self.bets.ask(unknown)
        return self.book.crowded(victim, tip, pools, stacking, seq)

    def unpublished(
        self, victim: str, seq: int, tip: int, block: int, found: list[Found],
        opportunities: list[Opportunity],
    ) -> tuple[list[Found], list[Opportunity], int]:  # fmt: skip
        """Those of a victim's backruns no swap read ahead outbids, and how many one does: one
        detect would publish it and withdraw it when that swap came; here it is withdrawn
        unpublished, and logged doomed at that swap's sequence (bet_log.py)."""
        kept: tuple[list[Found], list[Opportunity]] = ([], [])
        for f, opp in zip(found, opportunities, strict=True):
            doomed_at = self.ahead.first_outbid(tip, f.cycle.pools)
            if doomed_at is None:
                kept[0].append(f)
                kept[1].append(opp)
                continue
            self.outbid_unpublished += 1
            assert self.book.bets is not None
            self.book.bets.published(
                opp.id, victim, seq, Bet(tip, frozenset(f.cycle.pools), block, doomed_at)
            )
        return kept[0], kept[1], len(found) - len(kept[0])

    def health(self) -> dict[str, int]:
        return {
            "read_ahead": len(self.ahead),
            "read_seq": self.ahead.read_seq,
            "reader_behind": self.behind,
            "withdrawn_unpublished": self.outbid_unpublished,
            **self.bets.health(),
        }

    def on_block(self, number: int, mined: set[str]) -> None:
        """Swaps mined, or older than the book keeps them, leave the read-ahead too."""
        self.ahead.drop(mined, number - self.book.max_age_blocks)
