"""PendingBook: which pending swaps would be ordered ahead of a backrun on the same pools."""

from __future__ import annotations

from mev_common.messages import PendingTx

from services.detect.pending_book import PendingBook
from services.detect.pending_order import booked_block, effective_tip

GWEI = 10**9


def tx(**fees: int) -> PendingTx:
    return PendingTx.model_validate(
        {
            "chain_id": 1,
            "hash": "0x" + "1" * 64,
            "from": "0x" + "2" * 40,
            "nonce": 0,
            "gas": 1,
            **fees,
        }
    )


def test_effective_tip_follows_eip1559_and_legacy() -> None:
    assert effective_tip(tx(max_fee_per_gas=3 * GWEI, max_priority_fee_per_gas=GWEI), GWEI) == GWEI
    assert effective_tip(tx(max_fee_per_gas=GWEI + 5, max_priority_fee_per_gas=GWEI), GWEI) == 5
    assert effective_tip(tx(gas_price=4 * GWEI), GWEI) == 3 * GWEI
    assert effective_tip(tx(), GWEI) == 0


def test_crowded_by_an_equal_or_higher_tip_on_a_shared_pool() -> None:
    book = PendingBook()
    book.add("v", {"P"}, GWEI, 10)
    book.add("a", {"Q"}, 2 * GWEI, 10)
    book.add("b", {"P", "R"}, GWEI - 1, 10)
    assert book.crowded("v", GWEI, {"P", "S"}) is None  # b tips less: it goes after us
    book.add("c", {"S"}, GWEI, 10)
    assert book.crowded("v", GWEI, {"P", "S"}) == (
        f"pending c (tip {GWEI}) swaps through the same pools first"
    )
    book.on_block(11, ["c"])  # c mined
    assert book.crowded("v", GWEI, {"P", "S"}) is None


def test_entries_expire_after_max_age() -> None:
    book = PendingBook(max_age_blocks=3)
    book.add("x", {"P"}, GWEI, 10)
    book.on_block(13, [])
    assert "x" in book.entries
    book.on_block(14, [])
    assert book.entries == {}


def test_booked_at_our_head_unless_it_lags_the_chain_by_the_clock() -> None:
    assert booked_block(83, 1000, 1000.0, 1.0) == 83
    assert booked_block(83, 1000, 1001.9, 1.0) == 83  # the next block is due: not late yet
    assert booked_block(83, 1000, 1002.0, 1.0) == 84
    assert booked_block(83, 1000, 1004.5, 1.0) == 86  # the chain is at 87: one block less
    assert booked_block(83, 1000, 1009.0, 2.0) == 86
    assert booked_block(83, 1000, 990.0, 1.0) == 83  # a clock behind the chain's
    assert booked_block(83, 0, 1004.5, 1.0) == 83  # an older ingest's block: no seen time


def test_a_swap_seen_while_our_head_lags_is_not_aged_by_the_backlog() -> None:
    """After a NATS outage the block stream catches up behind live pending swaps: a swap seen
    at a stale head (83, the chain at 87 by the clock) stays booked while blocks 84-89 come in
    (booked at the head it aged out at 87, still pending, and a lower-tip victim's backrun
    through its pool was published without it)."""
    book = PendingBook(max_age_blocks=3)
    book.add("0xa", {"P"}, 5, booked_block(83, 1000, 1004.5, 1.0))
    for number in range(84, 90):
        book.on_block(number, [])
        assert book.crowded("0xv", 1, {"P"}) is not None, number
    book.on_block(90, [])
    assert book.crowded("0xv", 1, {"P"}) is None


def test_victim_queued_behind_its_senders_lower_nonce() -> None:
    book = PendingBook()
    book.add("first", {"P"}, GWEI // 10, 10, sender="0xS", nonce=4)
    book.add("victim", {"Q"}, 3 * GWEI, 10, sender="0xS", nonce=5)
    assert book.queued_behind("victim", "0xS", 5) == (
        "victim waits for first (nonce 4) of the same sender"
    )
    assert book.queued_behind("first", "0xS", 4) is None
    assert book.queued_behind("other", "0xT", 1) is None


def test_a_later_swap_ahead_of_a_published_backrun_dooms_it() -> None:
    book = PendingBook()
    book.published("opp-1", "v1", 2 * GWEI, {"P", "Q"}, 10)
    book.published("opp-2", "v2", 3 * GWEI, {"R"}, 10)
    assert book.doomed_by("late", GWEI, {"P"}) == []  # tips less: ordered after our backrun
    assert book.doomed_by("v1", 3 * GWEI, {"P"}) == []  # the victim itself
    assert book.doomed_by("late", 2 * GWEI, {"Q", "R"}) == ["opp-1"]
    assert list(book.backruns) == ["opp-2"]
    book.on_block(11, [])
    assert book.backruns == {}


def test_a_backrun_whose_victim_missed_the_block_can_still_be_doomed() -> None:
    # v1 was sent just after block 11 was built: it and our backrun of it are still pending
    book = PendingBook()
    book.add("v1", {"P"}, 2 * GWEI, 10)
    book.published("opp-1", "v1", 2 * GWEI, {"P"}, 10)
    book.on_block(11, [])
    assert book.doomed_by("v2", 3 * GWEI, {"P"}) == ["opp-1"]  # v2 goes before our trade
    book.published("opp-1", "v1", 2 * GWEI, {"P"}, 10)
    book.on_block(12, ["v1"])  # v1 mined, our trade with it
    assert book.backruns == {}
    book.add("v3", {"P"}, 2 * GWEI, 12)
    book.published("opp-3", "v3", 2 * GWEI, {"P"}, 12)
    book.on_block(14, [])
    assert list(book.backruns) == ["opp-3"]
    book.on_block(15, [])  # past its deadline (block 12 + 2): submit cancels it
    assert book.backruns == {}


def test_indexed_checks_equal_a_plain_scan_over_random_books() -> None:
    """The heap/sender indexes answer exactly what scanning every entry answers (whether a
    backrun is crowded or its victim queued), through adds, re-adds, mined txs and expiry."""
    import random

    rng = random.Random(12)
    pools = [f"P{i}" for i in range(6)]
    senders = [f"0xS{i}" for i in range(5)]
    book = PendingBook(max_age_blocks=2)
    block = 10
    for step in range(3_000):
        op = rng.random()
        if op < 0.55:
            h = f"t{rng.randrange(400)}"
            book.add(h, set(rng.sample(pools, rng.randint(1, 3))), rng.randint(0, 9), block,
                     rng.choice(senders), rng.randint(0, 6))  # fmt: skip
        elif op < 0.6:
            block += 1
            book.on_block(block, [h for h in list(book.entries) if rng.random() < 0.2])
        else:
            victim, tip = f"t{rng.randrange(400)}", rng.randint(0, 9)
            wanted = set(rng.sample(pools, rng.randint(1, 3)))
            scan_crowded = any(
                h != victim and e.tip >= tip and e.pools & wanted for h, e in book.entries.items()
            )
            assert (book.crowded(victim, tip, wanted) is not None) == scan_crowded, step
            sender, nonce = rng.choice(senders), rng.randint(0, 6)
            scan_queued = any(
                h != victim and e.sender == sender and 0 <= e.nonce < nonce
                for h, e in book.entries.items()
            )
            assert (book.queued_behind(victim, sender, nonce) is not None) == scan_queued, step


def test_stacking_a_swap_we_backrun_ahead_does_not_crowd() -> None:
    """simulate proves the backrun on top of that swap and our trade behind it; any other swap
    ahead, or one tipping the same (order unknown), still crowds."""
    book = PendingBook()
    book.add("v1", {"P"}, 3 * GWEI, 10, tx=tx())  # held whole: simulate can run it
    book.published("opp1", "v1", 3 * GWEI, {"P"}, 10)
    book.add("v2", {"P"}, 2 * GWEI, 10, tx=tx())
    assert book.crowded("v2", 2 * GWEI, {"P"}) is not None  # without stacking, as before
    assert book.crowded("v2", 2 * GWEI, {"P"}, stacking=True) is None
    book.add("x", {"P"}, 5 * GWEI, 10)  # nobody backruns x
    assert book.crowded("v2", 2 * GWEI, {"P"}, stacking=True) == (
        "pending x (tip 5000000000) swaps through the same pools first"
    )
    book.add("x", {"Q"}, 5 * GWEI, 10)  # x re-added through another pool: its P item is dead
    assert book.crowded("v2", 2 * GWEI, {"P"}, stacking=True) is None
    book.add("y", {"P"}, 2 * GWEI, 10, tx=tx())
    book.published("opp-y", "y", 2 * GWEI, {"P"}, 10)
    assert book.crowded("v2", 2 * GWEI, {"P"}, stacking=True) == (
        "pending y (tip 2000000000) swaps through the same pools first"
    )
    assert book.crowded("v2", GWEI, {"R"}, stacking=True) is None


def test_queued_txs_are_the_senders_lower_nonces_held_whole() -> None:
    def pending(nonce: int) -> PendingTx:
        return tx().model_copy(update={"hash": "0x" + f"{nonce:x}" * 64, "nonce": nonce})

    book = PendingBook()
    first, second, victim = pending(4), pending(5), pending(6)
    book.add(second.hash, {"Q"}, GWEI, 10, "u", 5, second)
    book.add(first.hash, {"P"}, GWEI, 10, "u", 4, first)
    book.add(victim.hash, {"P"}, GWEI, 10, "u", 6, victim)
    assert book.queued_txs(victim.hash, "u", 6) == [first, second]  # nonce order
    assert book.queued_txs(victim.hash, "other", 6) == []
    book.add("0x" + "9" * 64, {"R"}, GWEI, 10, "u", 3)  # held without its tx (a peer's)
    assert book.queued_txs(victim.hash, "u", 6) is None


def test_crowders_are_the_whole_txs_tipping_more_through_the_pools() -> None:
    def pending(tag: str) -> PendingTx:
        return tx().model_copy(update={"hash": "0x" + tag * 64})

    book = PendingBook()
    high, same, low = pending("a"), pending("b"), pending("c")
    book.add(high.hash, {"P"}, 3 * GWEI, 10, "x", 0, high)
    book.add(same.hash, {"P"}, 2 * GWEI, 10, "y", 0, same)
    book.add(low.hash, {"P"}, 1 * GWEI, 10, "z", 0, low)
    book.add("0x" + "d" * 64, {"P"}, 5 * GWEI, 10, "w", 0)  # held without its tx
    assert book.crowders("v", 2 * GWEI, {"P", "Q"}) == [high]
    # a crowder detect backruns but cannot hand to simulate whole still crowds
    book.published("o", "0x" + "d" * 64, 5 * GWEI, {"P"}, 10)
    book.published("o2", high.hash, 3 * GWEI, {"P"}, 10)
    assert book.crowded("v", 2 * GWEI, {"P"}, stacking=True) is not None


def swap_of(sender: str, nonce: int) -> PendingTx:
    return tx(max_fee_per_gas=9 * GWEI, max_priority_fee_per_gas=GWEI).model_copy(
        update={"sender": sender, "nonce": nonce}
    )


def test_forget_mined_drops_exactly_the_nonces_the_head_has_used() -> None:
    """After a block gap: a swap below its sender's count at the head is on chain (or can
    never be), so neither a crowder nor a queued tx; one at or above it is still pending."""
    book = PendingBook()
    book.add("mined", {"P"}, 3 * GWEI, 10, "0xA", 4, swap_of("0xA", 4))
    book.add("next", {"Q"}, 3 * GWEI, 10, "0xA", 5, swap_of("0xA", 5))
    book.add("other", {"P"}, 2 * GWEI, 10, "0xB", 7, swap_of("0xB", 7))
    book.add("unknown", {"R"}, 2 * GWEI, 10, "0xC", 1, swap_of("0xC", 1))
    assert book.senders() == ["0xA", "0xB", "0xC"]
    assert book.crowders("v", GWEI, {"P"}) == [swap_of("0xA", 4), swap_of("0xB", 7)]
    assert book.queued_txs("victim", "0xA", 6) == [swap_of("0xA", 4), swap_of("0xA", 5)]
    # 0xA's count at the head is 5 (nonce 4 used), 0xB's is 7 (nonce 7 not yet); 0xC unread
    assert book.forget_mined({"0xA": 5, "0xB": 7}) == ["mined"]
    assert sorted(book.entries) == ["next", "other", "unknown"]
    assert book.crowders("v", GWEI, {"P"}) == [swap_of("0xB", 7)]
    assert book.crowded("v", 2 * GWEI + 1, {"P"}) is None  # the mined one tipped 3 gwei
    assert book.queued_txs("victim", "0xA", 6) == [swap_of("0xA", 5)]
    assert book.queued_behind("next", "0xA", 5) is None
    assert book.senders() == ["0xA", "0xB", "0xC"]
    assert book.forget_mined({"0xA": 9, "0xB": 9, "0xC": 0}) == ["next", "other"]
    assert sorted(book.entries) == ["unknown"] and book.senders() == ["0xC"]
