"""Detect's cheaper pending path decides exactly what the old one decides (issue 12, detect at
3,000 tx/s): the same seeded real backrun candidates (bench/swaps.py, the throughput bench's
triggers) through the compiled screen (services/detect/candidates.py) and through one
`v2_verdict` a cycle publish the same messages, byte for byte and in order (opportunity ids,
hops, amounts, withdrawals), with the same search counts; and the compiled pass did run. The
indexed `PendingBook.doomed_by` answers what a scan of every booked trade answers, in order,
over random books with blind swaps and re-priced trades, and the victims `crowded` reads are
those of the booked trades."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from mev_common.messages import PendingTx, encode

from services.detect.pending_book import PendingBook
from tests.support.detect_decisions import decisions


def run(fast: bool, seed: int, n: int) -> tuple[list[bytes], Any, int]:
    """Every message detect publishes for n seeded swaps (subject and encoded bytes), its
    search counts, and how many searches took the compiled pass."""
    return decisions("FAST_SCREEN", fast, "flat_rates", seed, n, shown)


def shown(subject: str, message: Any) -> bytes:
    return subject.encode() + b" " + encode(message)


@pytest.mark.parametrize("seed", [8, 33])
def test_the_compiled_screen_changes_no_decision(seed: int) -> None:
    old, old_stats, none = run(False, seed, 400)
    new, new_stats, compiled = run(True, seed, 400)
    assert none == 0
    assert sum(b".opportunities." in m for m in old) >= 300  # real candidates
    assert sum(b".withdrawals " in m for m in old) >= 300  # and later swaps doom them
    assert new == old
    assert new_stats == old_stats
    assert compiled >= 400  # the victim's search and the follow-ons' took the compiled pass


def scanned(book: PendingBook, tx_hash: str, tip: int, touched: set[str]) -> list[str]:
    """The old `doomed_by`: every booked trade read, in booking order."""
    hit, blind = frozenset(touched), tx_hash in book._blind
    doomed = [
        opp_id
        for opp_id, b in book.backruns.items()
        if b.victim != tx_hash
        and tip >= b.tip
        and (b.pools & hit or (blind and b.survives is not None))
        and not book._pays(b, tx_hash)
    ]
    for opp_id in doomed:
        book._forget_backrun(opp_id)
    return doomed


def whole(tx_hash: str) -> PendingTx:
    return PendingTx.model_validate(
        {"chain_id": 1, "hash": tx_hash, "from": "0x" + "2" * 40, "nonce": 0, "gas": 1}
    )


@pytest.mark.parametrize("seed", range(6))
def test_indexed_doomed_by_answers_what_a_scan_answers(seed: int) -> None:
    rng = random.Random(seed)
    pools = [f"P{i}" for i in range(8)]
    books = PendingBook(), PendingBook()
    doomed_total = 0
    for step in range(600):
        tx_hash = "0x" + f"{rng.randrange(40):064x}"
        tip = rng.randrange(1, 20)
        touched = set(rng.sample(pools, rng.randrange(0, 3)))
        block = step // 50
        action, opp, pays = rng.random(), f"opp-{rng.randrange(60)}", rng.random() < 0.5
        for book in books:
            if action < 0.45:  # a backrun (or a block trade, re-priced) of it, maybe redelivered
                survives = (lambda ahead, pays=pays: pays and len(ahead) < 3) if touched else None
                book.published(opp, tx_hash, tip, touched or {"P0"}, block, survives)
            elif action < 0.97:  # a swap seen: booked (blind when it reverts), then dooming
                book.add(tx_hash, touched, tip, block, tx=whole(tx_hash))
            else:
                book.on_block(block, [tx_hash])
        if action >= 0.45 and action < 0.97:
            new = books[0].doomed_by(tx_hash, tip, touched)
            assert new == scanned(books[1], tx_hash, tip, touched)
            doomed_total += len(new)
        assert list(books[0].backruns) == list(books[1].backruns)
        for book in books:  # crowded()'s victims of booked backruns, kept rather than scanned
            victims = Counter(b.victim for b in book.backruns.values())
            assert book._victims == dict(victims)
    assert doomed_total >= 50  # not vacuous


class Walked(dict[str, Any]):
    """A dict that counts walks over all its items."""

    walks = 0

    def items(self) -> Any:
        Walked.walks += 1
        return super().items()


def test_doomed_by_reads_only_the_trades_through_its_pools() -> None:
    book = PendingBook()
    book.backruns = Walked()
    for i in range(100):
        book.published(f"opp-{i}", f"v{i}", 5, {f"P{i}"}, 1)
    book.add("x", {"P7"}, 9, 1)
    assert book.doomed_by("x", 9, {"P7"}) == ["opp-7"]
    assert Walked.walks == 0
