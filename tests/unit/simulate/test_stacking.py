"""stacking.py: the order a fee-ordered builder mines pending txs, and what a backrun meets."""

from __future__ import annotations

from dataclasses import replace

from services.simulate.decision import stack_risk
from services.simulate.engine import SimResult, TxSpec
from services.simulate.stacking import Plan, Queued, StackBook, chain_order, own_max_fee

GWEI = 10**9
BOT = "0xB0B"
P, Q, R = "0xp", "0xq", "0xr"


def tx(tag: str) -> TxSpec:
    return TxSpec(tag, "0xto", tag.encode())


def plain(*txs: TxSpec) -> Plan:
    """A plan with none of our trades ahead."""
    return Plan(txs, (), txs)


def user(key: str, tip: int, pools: set[str], sender: str = "", nonce: int = 0) -> Queued:
    # a devnet user caps its fee at tip + 1e6 wei (libs/ops/mev_ops/devnet/flow.py)
    return Queued(key, sender or key, tip + 10**6, frozenset(pools), tx(key), nonce=nonce)


def ours(
    key: str, victim_tip: int, pools: set[str], nonce: int = 0, behind: str | None = None
) -> Queued:
    fee = own_max_fee(victim_tip, 7, 50 * GWEI)
    return Queued(key, BOT, fee, frozenset(pools), tx(key), key, nonce, behind)


def first_backrun(tip: int = 3 * GWEI, depth: int = 2) -> tuple[StackBook, Queued, Queued]:
    """A book at block 10 holding a victim v1 through P and our trade t1 behind it."""
    book = StackBook(depth=depth, margin=8)
    v1 = user("v1", tip, {P})
    book.saw(10, v1)
    t1 = ours("t1", tip, {P}, behind="v1")
    book.took(10, t1)
    return book, v1, t1


def test_own_max_fee_is_what_submit_signs() -> None:
    # fees.bundle_fees: priority = victim's - 1, max fee = min(cap, 2 x base + priority)
    assert own_max_fee(3 * GWEI, 7, 50 * GWEI) == 3 * GWEI - 1 + 14
    assert own_max_fee(3 * GWEI, 7, 2 * GWEI) == 2 * GWEI  # priority clipped to cap - base
    assert own_max_fee(0, 7, 50 * GWEI) == 1 + 14


def test_chain_order_is_by_max_fee_with_each_sender_in_nonce_order() -> None:
    a = user("a", 2 * GWEI, {P})
    b = user("b", 3 * GWEI, {P})
    late = user("c1", 9 * GWEI, {Q}, sender="c", nonce=6)  # arrived first, but nonce 6
    early = user("c0", 1 * GWEI, {Q}, sender="c", nonce=5)
    tie = user("d", 2 * GWEI, {R})  # same fee as a, arrived later
    assert chain_order([late, a, b, early, tie]) == [b, a, tie, early, late]


def test_a_second_victim_tipping_less_is_backrun_on_top_of_our_first_trade() -> None:
    book = StackBook(depth=2, margin=8)
    v1 = user("v1", 3 * GWEI, {P, Q})
    book.saw(10, v1)
    t1 = ours("t1", 3 * GWEI, {P, Q})
    first = book.plan(10, v1, t1, head_nonce=0)
    assert first == plain(v1.tx) and isinstance(first, Plan) and first.keys == ("v1",)
    book.took(10, t1)
    v2 = user("v2", 2 * GWEI, {P})
    book.saw(10, v2)
    t2 = ours("t2", 2 * GWEI, {P, R}, nonce=1)
    plan = book.plan(10, v2, t2, head_nonce=0)
    # the chain: V1 (3 gwei + 1e6), T1 (3 gwei + 13), V2 (2 gwei + 1e6), T2
    assert plan == Plan((v1.tx, t1.tx, v2.tx), ("t1",), (v1.tx, v2.tx))
    assert isinstance(plan, Plan) and plan.stacked
    assert plan.keys == ("v1", "t1", "v2")  # what simulate's log names (hashes, ours by id)


def test_a_victim_tipping_more_than_our_earlier_trade_is_superseded() -> None:
    # it goes before our trade: detect withdraws that trade, so its state is unknown
    book, _, _ = first_backrun(tip=2 * GWEI)
    v2 = user("v2", 3 * GWEI, {P})
    book.saw(10, v2)
    assert book.plan(10, v2, ours("t2", 3 * GWEI, {P}, 1), head_nonce=0) == "superseded"


def test_a_follow_on_backrun_of_the_same_victim_stacks_on_our_first() -> None:
    # detect/follow_on.py: a second cycle through a pool of our backrun t1, sized after it;
    # t1 sits between v1 and the follow-on, but it is ours behind that same victim
    book, v1, t1 = first_backrun()
    follow = ours("f1", 3 * GWEI, {P, Q}, nonce=1, behind="v1")
    assert book.plan(10, v1, follow, head_nonce=0) == Plan((v1.tx, t1.tx), ("t1",), (v1.tx,))
    # ours behind another victim that goes first is still refused
    v2 = user("v2", 4 * GWEI, {P})
    book.saw(10, v2)
    other = ours("f2", 4 * GWEI, {P}, nonce=1, behind="v0")
    assert book.plan(10, v2, other, head_nonce=0) == "superseded"


def test_depth_bounds_how_many_of_our_trades_a_backrun_stands_on() -> None:
    book = StackBook(depth=1, margin=8)
    for i, tip in enumerate((5, 4)):
        v = user(f"v{i}", tip * GWEI, {P})
        book.saw(10, v)
        plan = book.plan(10, v, ours(f"t{i}", tip * GWEI, {P}, i), head_nonce=0)
        assert isinstance(plan, Plan) and len(plan.after) == i
        book.took(10, ours(f"t{i}", tip * GWEI, {P}, i))
    v = user("v2", 3 * GWEI, {P})
    book.saw(10, v)
    assert book.plan(10, v, ours("t2", 3 * GWEI, {P}, 2), head_nonce=0) == "superseded"


def test_depth_zero_is_the_behaviour_before_stacking() -> None:
    book, _, _ = first_backrun(depth=0)
    v2 = user("v2", 2 * GWEI, {P})
    book.saw(10, v2)
    assert book.plan(10, v2, ours("t2", 2 * GWEI, {P}, 1), head_nonce=0) == "superseded"
    assert book.plan(10, v2, ours("t2", 2 * GWEI, {R}, 1), head_nonce=0) == plain(v2.tx)
    assert book.plan(10, v2, ours("t2", 2 * GWEI, {R}, 1), head_nonce=1) == "victim_queued"


def test_a_victim_that_fails_alone_is_forgotten() -> None:
    book = StackBook(depth=2, margin=8)
    v1 = user("v1", 3 * GWEI, {P})
    book.saw(10, v1)
    v2 = user("v2", 2 * GWEI, {P})
    book.saw(10, v2)
    book.forget(10, "v1")
    assert book.plan(10, v2, ours("t2", 2 * GWEI, {P}), head_nonce=0) == plain(v2.tx)


def test_a_new_block_forgets_the_last_one() -> None:
    book = StackBook(depth=2, margin=8)
    book.took(10, ours("t1", 3 * GWEI, {P}))
    v2 = user("v2", 2 * GWEI, {P})
    book.saw(11, v2)
    assert book.plan(11, v2, ours("t2", 2 * GWEI, {P}, 1), head_nonce=0) == plain(v2.tx)
    book.took(10, ours("late", 1, {P}))  # a late one of an older block is not tracked
    assert [q.key for q in book.entries] == ["v2"]


def late_backrun(tip: int = 3 * GWEI) -> tuple[StackBook, Queued, Queued]:
    """`first_backrun` at block 10 whose victim v1 missed block 11: still pending at 11."""
    book, v1, t1 = first_backrun(tip)
    book.roll(11, {"0xother"})  # block 11's txs: not v1
    return book, v1, t1


def test_a_victim_that_missed_the_block_is_carried_with_our_trade_behind_it() -> None:
    book, v1, t1 = late_backrun()
    assert [q.key for q in book.entries] == ["v1", "t1"] and book.block == 11
    # a backrun of block 11 lands after our t1 (lower nonce) and v1 (it bids above t1): it
    # is proven on top of both, never on the head alone
    v2 = user("v2", 2 * GWEI, {P})
    book.saw(11, v2)
    plan = book.plan(11, v2, ours("t2", 2 * GWEI, {P}), head_nonce=0)
    assert plan == Plan((v1.tx, t1.tx, v2.tx), ("t1",), (v1.tx, v2.tx))
    # v2 tipping more goes before t1: t1's state is unknown, refused as within one block
    book, _, _ = late_backrun()
    v3 = user("v3", 4 * GWEI, {P})
    book.saw(11, v3)
    assert book.plan(11, v3, ours("t3", 4 * GWEI, {P}), head_nonce=0) == "superseded"


def test_a_carried_victim_moving_our_pool_runs_first_even_if_our_trade_does_not() -> None:
    # t1 trades through Q only, its victim v1 moved P too: a backrun through P meets v1
    book = StackBook(depth=2, margin=8)
    v1 = user("v1", 3 * GWEI, {P, Q})
    book.saw(10, v1)
    t1 = ours("t1", 3 * GWEI, {Q}, behind="v1")
    book.took(10, t1)
    book.roll(11, set())
    v2 = user("v2", 2 * GWEI, {P})
    book.saw(11, v2)
    plan = book.plan(11, v2, ours("t2", 2 * GWEI, {P, R}), head_nonce=0)
    assert plan == Plan((v1.tx, t1.tx, v2.tx), (), (v1.tx, v2.tx))
    # a victim tipping more goes first, and our trade behind it too: submit never sends it
    # behind t1 (cheaper, in flight): another nonce lane, or refused (services/submit/lanes.py)
    v3 = user("v3", 4 * GWEI, {P})
    book.saw(11, v3)
    plan = book.plan(11, v3, ours("t3", 4 * GWEI, {P, R}), head_nonce=0)
    assert plan == plain(v3.tx)  # then v1, t1, v2


def test_only_our_trades_behind_a_victim_not_mined_are_carried() -> None:
    book, _, _ = first_backrun()
    book.saw(10, user("v9", GWEI, {R}))  # a victim we did not trade behind: a guess, dropped
    book.took(10, ours("block-trade", 1, {R}))  # no victim: it lands at block 11
    book.roll(11, {"v1"})  # v1 mined at 11: our t1 landed with it
    assert book.entries == [] and book.block == 11
    book, _, _ = first_backrun()
    book.saw(10, user("v9", GWEI, {R}))
    book.roll(11, set())
    assert [q.key for q in book.entries] == ["v1", "t1"]
    book.roll(12, set())
    assert [q.key for q in book.entries] == ["v1", "t1"]
    book.roll(13, set())  # past its deadline (block 10 + 2): submit cancels t1
    assert book.entries == []
    book.roll(12, set())  # an older block moves nothing
    assert book.block == 13


def test_our_trade_lands_in_fee_order_not_behind_our_cheaper_trades() -> None:
    # bench's backrun flow, lanes 3: our block trade (1 gwei, R) in flight, a victim v1 (1.4
    # gwei, P) and a victim v2 (1.7 gwei): our backrun of v2 through P went out on another lane
    # and landed right after v2, before v1: proven behind v1 and our block trade, it reverted
    book = StackBook(depth=2, margin=8)
    block = ours("block", 1 * GWEI + 1, {R})
    book.took(10, block)
    v1 = user("v1", 14 * GWEI // 10, {P})
    book.saw(10, v1)
    v2 = user("v2", 17 * GWEI // 10, {Q})
    book.saw(10, v2)
    assert book.plan(10, v2, ours("t2", 17 * GWEI // 10, {P}), head_nonce=0) == plain(v2.tx)
    # a backrun bidding below all of them still lands after them
    v3 = user("v3", GWEI // 2, {Q})
    book.saw(10, v3)
    plan = book.plan(10, v3, ours("t3", GWEI // 2, {P}), head_nonce=0)
    assert plan == Plan((v2.tx, v1.tx, block.tx, v3.tx), (), (v2.tx, v1.tx, v3.tx))
    # ahead of an earlier trade of ours through its pools: that trade's state would change
    book.took(10, ours("t1", 14 * GWEI // 10, {P}, behind="v1"))
    assert book.plan(10, v2, ours("t2", 17 * GWEI // 10, {P}), head_nonce=0) == "superseded"


def test_our_trades_keep_their_order_across_blocks() -> None:
    book, _, _ = late_backrun()
    book.took(11, ours("t2", 2 * GWEI, {R}))
    assert [(q.key, q.nonce) for q in book.entries if q.bundle_id] == [("t1", 0), ("t2", 1)]


def test_victim_behind_a_known_lower_nonce_of_its_sender_runs_after_it() -> None:
    book = StackBook(depth=2, margin=8)
    first = user("u0", 4 * GWEI, {Q}, sender="u", nonce=4)
    second = user("u1", 3 * GWEI, {P}, sender="u", nonce=5)
    book.saw(10, second)
    t = ours("t", 3 * GWEI, {P})
    assert book.plan(10, second, t, head_nonce=4) == "victim_queued"  # nonce 4 unknown
    book.saw(10, first)
    # the sender's nonce 4 goes first; our trade (3 gwei + 13) after both
    assert book.plan(10, second, t, head_nonce=4) == plain(first.tx, second.tx)


def test_behind_a_cheaper_lower_nonce_of_its_sender_our_backrun_bids_that_fee() -> None:
    """Bidding the victim's max fee, ours would be ready while the victim waits for its
    sender's cheaper nonce 4, and go before both (`stack_order`, refused). Bidding that
    nonce's max fee (a tie it arrived first for) ours lands after it, and the victim, ready
    then and bidding more, goes between: [u0, u1, ours]. Only with `bid_under` on
    (`simulate.bid_behind_victim_nonces`): off, it is refused as before."""
    book = StackBook(depth=2, margin=8, bid_under=True)
    first = user("u0", 1 * GWEI, {Q}, sender="u", nonce=4)
    second = user("u1", 3 * GWEI, {P}, sender="u", nonce=5)
    book.saw(10, first)
    book.saw(10, second)
    t = tied("t", second, {P})
    off = StackBook(depth=2, margin=8)
    off.saw(10, first)
    off.saw(10, second)
    assert off.plan(10, second, t, head_nonce=4, least_fee=8) == "stack_order"
    plan = book.plan(10, second, t, head_nonce=4, least_fee=8)
    assert plan == Plan((first.tx, second.tx), (), (first.tx, second.tx), bid=first.max_fee)
    assert chain_order([first, second, replace(t, max_fee=first.max_fee)])[-1].key == "t"
    # a nonce whose max fee leaves no tip over the next base fee: no mineable bid lands
    # behind it, and at the victim's fee ours goes first
    assert book.plan(10, second, t, head_nonce=4, least_fee=first.max_fee + 1) == "stack_order"
    assert book.plan(10, second, t, head_nonce=4, least_fee=first.max_fee) == plan
    # the cheapest of the nonces it waits for sets the bid; one the head used does not count
    cheaper = user("u-1", GWEI // 2, {R}, sender="u", nonce=3)
    book.saw(10, cheaper)
    used = book.plan(10, second, t, 4, lambda sender: 4 if sender == "u" else 0, least_fee=8)
    assert used == plan
    at_3 = book.plan(10, second, t, head_nonce=3, least_fee=8)
    assert at_3 == Plan((cheaper.tx, first.tx, second.tx), (), (cheaper.tx, first.tx, second.tx),
                        bid=cheaper.max_fee)  # fmt: skip


def test_a_lowered_bid_tied_with_a_nonce_through_our_pools_is_not_an_unsure_order() -> None:
    # ours lands after the victim, so after every nonce the victim waits for: its tie with
    # one of them through our pools is no guess (another user's is: unsure, as before)
    book = StackBook(depth=2, margin=8, bid_under=True)
    first = user("u0", 1 * GWEI, {P}, sender="u", nonce=4)
    second = user("u1", 3 * GWEI, {P}, sender="u", nonce=5)
    book.saw(10, first)
    book.saw(10, second)
    plan = book.plan(10, second, tied("t", second, {P}), head_nonce=4, least_fee=8)
    assert plan == Plan((first.tx, second.tx), (), (first.tx, second.tx), bid=first.max_fee)
    book.saw(10, user("w", 1 * GWEI, {P}))  # another sender bidding that fee through P
    assert book.plan(10, second, tied("t", second, {P}), 4, least_fee=8) == "stack_order_unsure"


def test_fees_too_close_to_order_are_refused() -> None:
    book, _, _ = first_backrun()
    # a user whose max fee is within the margin of our trade's estimate
    close = Queued("v2", "v2", own_max_fee(3 * GWEI, 7, 50 * GWEI) - 3, frozenset({P}), tx("v2"))
    book.saw(10, close)
    assert book.plan(10, close, ours("t2", 2 * GWEI, {P}, 1), 0) == "stack_order_unsure"


def test_a_redelivered_opportunity_never_stacks_on_its_own_bundle() -> None:
    book, v1, t1 = first_backrun()
    assert book.plan(10, v1, t1, head_nonce=0) == plain(v1.tx)


def test_stack_risk_bounds_the_revert_if_our_earlier_trade_does_not_land() -> None:
    fee = 2 * GWEI
    assert stack_risk(SimResult(True, 150_000, 10**16), 10**15, fee, 300_000) is None
    # reverting costs (gas + the 30k cold bias, at most the limit) x fee cap
    cost = (150_000 + 30_000) * fee
    assert stack_risk(SimResult(False, 150_000, 0), cost, fee, 300_000) is None
    assert stack_risk(SimResult(False, 150_000, 0), cost - 1, fee, 300_000) == (
        f"a revert without our earlier trade costs {cost} wei > its net {cost - 1}"
    )
    assert stack_risk(SimResult(False, 290_000, 0), 300_000 * fee, fee, 300_000) is None
    failed = SimResult(False, 0, 0, victim_failed=True)
    assert stack_risk(failed, 10**18, fee, 300_000) == "a victim fails without our earlier trade"


def test_own_max_fee_with_the_victims_max_fee_is_that_fee_under_the_cap() -> None:
    # fees.bundle_fees: a backrun bids its victim's tip and max fee, never above the cap
    assert own_max_fee(3 * GWEI, 7, 50 * GWEI, 3 * GWEI + 10**6) == 3 * GWEI + 10**6
    assert own_max_fee(3 * GWEI, 7, 2 * GWEI, 3 * GWEI + 10**6) == 2 * GWEI


def tied(key: str, victim: Queued, pools: set[str]) -> Queued:
    """Ours behind `victim`, bidding its fees (a tie on max fee: arrival decides)."""
    fee = own_max_fee(3 * GWEI, 7, 50 * GWEI, victim.max_fee)
    return Queued(key, BOT, fee, frozenset(pools), tx(key), key, 0, victim.key)


def test_ours_tied_with_its_victim_runs_right_after_it_where_it_arrived() -> None:
    """Our first trade ties its victim's max fee: a follow-on of the same victim runs on
    [v1, t1] (the victim arrived first), not [t1, v1] (the book once put the victim last);
    a second victim tipping less comes after both: [v1, t1, v2, t2]."""
    book = StackBook(depth=2, margin=8)
    v1 = user("v1", 3 * GWEI, {P})
    book.saw(10, v1)
    t1 = tied("t1", v1, {P})
    assert t1.max_fee == v1.max_fee
    book.took(10, t1)
    follow = book.plan(10, v1, tied("t1b", v1, {P}), 0)
    assert follow == Plan((v1.tx, t1.tx), ("t1",), (v1.tx,))
    v2 = user("v2", 2 * GWEI, {P})
    book.saw(10, v2)
    second = book.plan(10, v2, tied("t2", v2, {P}), 0)
    assert second == Plan((v1.tx, t1.tx, v2.tx), ("t1",), (v1.tx, v2.tx))
