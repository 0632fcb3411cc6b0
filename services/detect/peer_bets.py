"""Detect replicas tell each other what they decided on a pending swap, when one needs it.

Why: a backrun crowded only by swaps another replica searched is judged by that replica's
decision on them (services/detect/bet_log.py). Asked on demand, not broadcast: that case is
rare (a swap ahead tipping more, through the backrun's pools, whole), and a broadcast of every
decision would add a publish and N-1 decodes to every trigger of every replica.

The order: a replica may judge victim B before the replica that holds swap A (ahead of B) has
decided A; it asks (`PeerQuestion`, core NATS) and waits. The replica that holds A answers when
it has decided A (`PeerAnswer`, at once if it already has); until then the question is parked.
Each replica decides its triggers in stream order, and a question is only about a swap earlier
in the stream than the one being judged, so two replicas never wait on each other; a swap nobody
holds (its replica died) is waited for once, at most `ASK_WAIT_S`, then crowds the backrun
(counted `unanswered`: the safe side) and is not waited for again (a replica that died holding
swaps would otherwise cost 50 ms a question, past the consumer's ack wait); a late answer is
still taken.

The bus is hostile: answers are checked against the book (the victim asked about, its stream
sequence and tip, each bet bidding that tip) and otherwise ignored, counted; an undecodable one
is counted by the subscription (`errors{kind="bad_peeranswer"}`). A forged answer can at worst
exempt a crowder that the backrun's opportunity then carries in `ahead`: simulate re-proves
every bundle on the real state behind it, so it costs a wasted simulation, never a trade.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from mev_common.messages import PeerAnswer, PeerBet, PeerQuestion

from services.detect.bet_log import Bet, BetLog
from services.detect.pending_book import PendingBook

log = logging.getLogger("mev.detect")
ASK_WAIT_S = 0.05  # a question's longest wait for its answer
PARKED = 4096  # questions kept for swaps not decided here yet (the oldest go first)
BATCH = 16  # victims a question names at most (PeerQuestion)

Send = Callable[[PeerQuestion | PeerAnswer], Awaitable[None]]


class PeerBets:
    """Questions to the other replicas, and this replica's answers to theirs."""

    def __init__(self, book: PendingBook, chain_id: int, send: Send) -> None:
        if book.bets is None:
            book.bets = BetLog()
        self.book, self.log = book, book.bets
        self.chain_id = chain_id
        self.send = send
        self.replica = secrets.token_hex(8)
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._parked: OrderedDict[str, None] = OrderedDict()
        # swaps a question timed out on: not asked (waited for) again, an answer still taken
        self._gave_up: OrderedDict[str, None] = OrderedDict()
        self.asked = 0  # swaps asked about
        self.unanswered = 0  # of them, no answer in ASK_WAIT_S (judged crowded)
        self.rejected = 0  # answers that did not match the book (ignored)
        self.answered_later = 0  # questions answered once decided here (parked first)
        self.send_failed = 0  # questions or answers the bus refused (a question: unanswered)

    async def ask(self, victims: list[str]) -> None:
        """Learn the decisions on `victims` from the peers (each waited for at most
        ASK_WAIT_S; whatever is learned goes into the log)."""
        loop = asyncio.get_running_loop()
        victims = [v for v in victims if v not in self._gave_up]
        if not victims:
            return
        new = [v for v in victims if v not in self._waiting]
        futures = [self._waiting.setdefault(v, loop.create_future()) for v in victims]
        self.asked += len(new)
        for k in range(0, len(new), BATCH):
            part = new[k : k + BATCH]
            await self._send(
                PeerQuestion(chain_id=self.chain_id, replica=self.replica, victims=part)
            )
        _, late = await asyncio.wait(futures, timeout=ASK_WAIT_S)
        self.unanswered += len(late)
        for victim in victims:
            future = self._waiting.pop(victim, None)
            if future is not None and not future.done():  # its holder died, or is far behind
                self._gave_up[victim] = None
                if len(self._gave_up) > PARKED:
                    self._gave_up.popitem(last=False)

    async def on_question(self, question: PeerQuestion) -> None:
        if question.chain_id != self.chain_id or question.replica == self.replica:
            return
        for victim in question.victims:
            decision = self.log.decided.get(victim)
            if decision is not None and decision.mine:
                await self._answer(victim)
            else:  # held here, or by another replica: answered when decided here
                self._parked[victim] = None
                if len(self._parked) > PARKED:
                    self._parked.popitem(last=False)

    async def decided(self, victim: str, seq: int) -> None:
        """This replica has decided `victim` (stream sequence `seq`): a parked question on it
        is answered now."""
        self.log.decide(victim, seq)
        if self._parked and victim in self._parked:
            del self._parked[victim]
            self.answered_later += 1
            await self._answer(victim)

    async def _answer(self, victim: str) -> None:
        decision = self.log.decided[victim]
        bets = [
            PeerBet(tip=b.tip, pools=sorted(b.pools), block=b.block, doomed_at=b.doomed_at)
            for b in decision.bets
        ]
        answer = PeerAnswer(
            chain_id=self.chain_id, replica=self.replica, victim=victim, seq=decision.seq, bets=bets
        )
        await self._send(answer)

    async def _send(self, message: PeerQuestion | PeerAnswer) -> None:
        """Send, a failure counted and logged: a trigger's handling (which answers when it has
        decided) must not fail for it, and an unsent question is an unanswered one."""
        try:
            await self.send(message)
        except Exception as exc:  # the connection closed, a slow consumer: not ours to end
            self.send_failed += 1
            log.warning("peer message not sent", extra={"fields": {"error": repr(exc)}})

    async def on_answer(self, answer: PeerAnswer) -> None:
        future = self._waiting.get(answer.victim)
        late = future is None and answer.victim in self._gave_up
        if answer.replica == self.replica or not (late or (future and not future.done())):
            return  # ours, not asked, or already answered
        entry = self.book.entries.get(answer.victim)
        if (
            answer.chain_id != self.chain_id
            or entry is None
            or entry.seq != answer.seq
            or any(b.tip != entry.tip for b in answer.bets)
        ):
            self.rejected += 1  # a backrun bids its victim's tip; the book says which swap
            return
        self.log.learned(
            answer.victim,
            answer.seq,
            [Bet(b.tip, frozenset(b.pools), b.block, b.doomed_at) for b in answer.bets],
        )
        self._gave_up.pop(answer.victim, None)
        if future is not None:
            future.set_result(None)

    def health(self) -> dict[str, int]:
        return {
            "peer_asked": self.asked,
            "peer_unanswered": self.unanswered,
            "peer_rejected": self.rejected,
            "peer_send_failed": self.send_failed,
        }
