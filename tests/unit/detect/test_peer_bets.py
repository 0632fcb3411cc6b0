"""A replica's log of decisions by stream sequence (services/detect/bet_log.py) and the checks
on a peer's answer (services/detect/peer_bets.py): what one detect's book held when it judged
a victim, and a hostile answer ignored with a count."""

from __future__ import annotations

import asyncio

from mev_common.messages import PeerAnswer, PeerBet, PeerQuestion, PendingTx

from services.detect.bet_log import Bet, BetLog
from services.detect.peer_bets import PeerBets
from services.detect.pending_book import PendingBook

P = "0x" + "11" * 20
Q = "0x" + "22" * 20
A, B, C = ("0x" + c * 64 for c in "abc")
TX = PendingTx.model_validate(
    {"chain_id": 1, "hash": A, "from": "0x" + "33" * 20, "nonce": 0, "gas": 1}
)


def book_with_bets() -> PendingBook:
    book = PendingBook(bets=BetLog())
    book.add(A, [P], 20, 10, tx=TX, seq=1)  # A, backrun by a peer, tips more than B
    return book


def test_a_peer_backrun_stands_until_a_swap_booked_after_its_victim_outbids_it() -> None:
    """A peer's answer carries no doom it had not read yet: the swaps booked here between its
    victim and the judged victim tell (`PendingBook.swapped`)."""
    book = book_with_bets()
    assert book.bets is not None
    book.bets.learned(A, 1, [Bet(20, frozenset([P]), 10)])
    book.add(B, [P], 10, 10, tx=TX, seq=3)
    assert book.crowded(B, 10, [P], stacking=True, as_of=3) is None  # A's backrun stands
    book.add(C, [P, Q], 20, 10, tx=TX, seq=2)  # after A, tips A's backrun's tip: dooms it
    assert book.bets.standing(A, 3, book.swapped) is False
    assert book.crowded(B, 10, [P], stacking=True, as_of=3) is not None
    assert book.bets.standing(A, 1, book.swapped) is True  # judged before C came
    assert book.bets.standing(B, 3, book.swapped) is None  # nobody's decision known


def test_our_backrun_withdrawn_after_the_judged_victim_still_stood_then() -> None:
    """The reader withdraws a backrun when it reads the swap that dooms it, possibly one after
    the victim judged now: one detect had it booked then (`doomed_at`)."""
    book = book_with_bets()
    assert book.bets is not None
    book.published("opp-a", A, 20, [P], 10, seq=1)
    assert book.doomed_by(C, 25, [P], seq=9) == ["opp-a"]
    assert book.bets.standing(A, 8, book.swapped) is True
    assert book.bets.standing(A, 9, book.swapped) is False
    book.add(B, [P], 10, 10, tx=TX, seq=8)
    assert book.crowded(B, 10, [P], stacking=True, as_of=8) is None
    # one detect (no log) never exempts a swap whose backrun is withdrawn
    alone = PendingBook()
    alone.add(A, [P], 20, 10, tx=TX)
    alone.published("opp-a", A, 20, [P], 10)
    alone.doomed_by(C, 25, [P])
    alone.add(B, [P], 10, 10, tx=TX)
    assert alone.crowded(B, 10, [P], stacking=True) is not None


def test_decisions_leave_with_their_swaps_and_backruns_as_the_book_forgets_them() -> None:
    book = book_with_bets()
    assert book.bets is not None
    book.published("opp-a", A, 20, [P], 10, seq=1)
    book.bets.decide(B, 2)  # B decided here with no backrun, not pending any more
    book.on_block(12, [])  # A missed blocks 11 and 12: carried (BACKRUN_CARRY_BLOCKS)
    assert book.bets.standing(A, 5, book.swapped) is True and B not in book.bets.decided
    book.on_block(13, [])
    assert book.bets.standing(A, 5, book.swapped) is False  # decided, nothing standing


def answer(**changes: object) -> PeerAnswer:
    values = {"chain_id": 1, "replica": "peer", "victim": A, "seq": 1}
    values["bets"] = [PeerBet(tip=20, pools=[P], block=10)]
    return PeerAnswer.model_validate({**values, **changes})


def test_an_answer_that_does_not_match_the_book_is_ignored_and_counted() -> None:
    """Hostile bus: an answer about a swap not asked for, from ourselves, with another stream
    sequence or chain, or a backrun not bidding its victim's tip (as every backrun does) is
    ignored; the question then times out (`unanswered`) and the backrun is judged crowded."""

    async def run() -> tuple[PeerBets, list[PeerQuestion | PeerAnswer]]:
        sent: list[PeerQuestion | PeerAnswer] = []

        async def send(message: PeerQuestion | PeerAnswer) -> None:
            sent.append(message)
            bets = [PeerBet(tip=21, pools=[P], block=10)]
            for bad in (answer(seq=2), answer(chain_id=5), answer(bets=bets)):
                await exchange.on_answer(bad)
            await exchange.on_answer(answer(replica=exchange.replica))
            await exchange.on_answer(answer(victim=C))  # not asked: no count, no effect

        book = book_with_bets()
        book.add(B, [P], 10, 10, tx=TX, seq=3)
        exchange = PeerBets(book, 1, send)
        await exchange.ask([A])
        return exchange, sent

    exchange, sent = asyncio.run(run())
    assert [type(m) for m in sent] == [PeerQuestion]
    assert (exchange.asked, exchange.rejected, exchange.unanswered) == (1, 3, 1)
    assert A not in exchange.log.decided and C not in exchange.log.decided
    assert exchange.book.crowded(B, 10, [P], stacking=True, as_of=3) is not None  # A crowds it


def test_a_message_the_bus_refuses_is_counted_and_the_question_unanswered() -> None:
    async def run() -> PeerBets:
        async def refused(message: PeerQuestion | PeerAnswer) -> None:
            raise ConnectionError("closed")

        book = book_with_bets()
        exchange = PeerBets(book, 1, refused)
        await exchange.on_question(PeerQuestion(chain_id=1, replica="peer", victims=[A]))
        await exchange.decided(A, 1)  # answering fails: the trigger's handling goes on
        await exchange.ask([C])
        return exchange

    exchange = asyncio.run(run())
    assert (exchange.send_failed, exchange.unanswered, exchange.answered_later) == (2, 1, 1)


def test_a_question_is_answered_when_the_swap_is_decided_here() -> None:
    async def run() -> list[PeerQuestion | PeerAnswer]:
        sent: list[PeerQuestion | PeerAnswer] = []

        async def send(message: PeerQuestion | PeerAnswer) -> None:
            sent.append(message)

        book = book_with_bets()
        exchange = PeerBets(book, 1, send)
        question = PeerQuestion(chain_id=1, replica="peer", victims=[A])
        await exchange.on_question(question)  # not decided here yet: parked
        assert sent == []
        book.published("opp-a", A, 20, [P], 10, seq=1)
        await exchange.decided(A, 1)
        await exchange.on_question(question)  # decided: answered at once
        return sent

    sent = asyncio.run(run())
    assert sent == [answer(replica=sent[0].replica)] * 2  # type: ignore[union-attr]


def test_a_swap_nobody_answers_for_is_waited_for_once_and_a_late_answer_still_counts() -> None:
    """Its holder died: the next backrun it crowds is judged at once (crowded), not after
    another wait; an answer that comes later is checked and learned as any other."""

    async def run() -> PeerBets:
        sent: list[PeerQuestion | PeerAnswer] = []

        async def send(message: PeerQuestion | PeerAnswer) -> None:
            sent.append(message)

        book = book_with_bets()
        exchange = PeerBets(book, 1, send)
        await exchange.ask([A])
        await exchange.ask([A])  # not asked again
        assert len(sent) == 1 and A not in exchange.log.decided
        await exchange.on_answer(answer())
        return exchange

    exchange = asyncio.run(run())
    assert (exchange.asked, exchange.unanswered) == (1, 1)
    assert exchange.log.standing(A, 1, exchange.book.swapped) is True
