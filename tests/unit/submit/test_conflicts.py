"""PoolClaims: one trade of ours per pool in flight; nothing proven before our own trade."""

from __future__ import annotations

from services.submit.conflicts import PoolClaims

P, Q, R = "0xP", "0xQ", "0xR"


def test_in_flight_pool_is_refused_until_settled() -> None:
    claims = PoolClaims()
    assert claims.conflict("b1", {P, Q}, 10) is None
    claims.claim("b1", {P, Q})
    assert claims.conflict("b1", {P, Q}, 10) is None  # its own redelivery
    assert claims.conflict("b2", {Q, R}, 10) == "pool 0xQ is in our unsettled trade b1"
    assert claims.conflict("b3", {R}, 10) is None
    claims.release("b1", None)  # reverted or dropped: pools unchanged
    assert claims.conflict("b2", {Q, R}, 10) is None


def test_state_older_than_our_landed_trade_is_refused() -> None:
    claims = PoolClaims()
    claims.claim("b1", {P})
    claims.release("b1", 12)  # landed in block 12
    assert claims.conflict("b2", {P}, 11) == (
        "proven on block 11, before our trade through 0xP landed in block 12"
    )
    assert claims.conflict("b3", {P}, 12) is None
    assert claims.in_flight == {}


def test_a_holder_may_have_landed_only_at_a_later_block_than_it_was_proven_on() -> None:
    claims = PoolClaims()
    claims.claim("b1", {P, Q}, 10)  # proven on 10: lands in 11 at the earliest
    assert claims.may_have_landed({Q, R}, 10) is False
    assert claims.may_have_landed({Q, R}, 11) is True
    assert claims.may_have_landed({R}, 11) is False  # no holder
    claims.release("b1", 11)
    assert claims.may_have_landed({Q}, 12) is False
    assert claims.conflict("b2", {Q}, 10) is not None  # proven before our trade landed
    assert claims.conflict("b2", {Q}, 11) is None


def test_a_trade_stacked_on_ours_is_sent_only_while_ours_is_in_flight() -> None:
    claims = PoolClaims()
    claims.claim("b1", {P, Q}, 10)
    # proven on top of b1 (simulate's Bundle.after_bundles): its pools may be b1's
    assert claims.conflict("b2", {Q, R}, 10, ["b1"]) is None
    # not on top of b1: refused as before
    assert claims.conflict("b3", {Q}, 10) == "pool 0xQ is in our unsettled trade b1"
    claims.claim("b2", {Q, R}, 10)
    assert claims.in_flight == {P: "b1", Q: "b2", R: "b2"}
    # a third one on top of b1 only: Q is b2's now, and b2 is not under it
    assert claims.conflict("b4", {Q}, 10, ["b1"]) == "pool 0xQ is in our unsettled trade b2"
    assert claims.conflict("b4", {Q}, 10, ["b1", "b2"]) is None
    claims.release("b1", 11)  # landed: every pool it traded through counts, Q included
    assert claims.landed_at == {P: 11, Q: 11}
    assert claims.in_flight == {Q: "b2", R: "b2"}
    claims.release("b2", None)  # reverted: b1's landing still refuses older proofs through Q
    assert claims.conflict("b5", {Q}, 10) == (
        "proven on block 10, before our trade through 0xQ landed in block 11"
    )


def test_a_trade_on_top_of_one_not_in_flight_is_refused() -> None:
    claims = PoolClaims()
    # never sent (refused, or not signed yet): the state it was proven on will not exist
    assert claims.conflict("b2", {R}, 10, ["b1"]) == (
        "proven on top of our trade b1, which is not in flight"
    )
    claims.claim("b1", {P}, 10)
    claims.release("b1", None)  # settled (reverted or dropped)
    assert claims.conflict("b2", {P}, 10, ["b1"]) == (
        "proven on top of our trade b1, which is not in flight"
    )


def test_a_trade_bidding_more_than_an_unsettled_one_of_ours_is_refused() -> None:
    """The devnet e2e's revert: our backrun bidding 0.5 gwei missed its block, and a later one
    through other pools bidding 2.5 gwei, sent with the next nonce, landed behind it and behind
    every user swap tipping between the two."""
    claims = PoolClaims()
    claims.claim("b1", {P}, 18, tip=499_999_999)
    assert claims.conflict("b2", {Q}, 19, tip=499_999_999) is None  # lands right behind it
    assert claims.conflict("b2", {Q}, 19, tip=2_499_999_999) == (
        "our unsettled trade b1 bids 499999999 < 2499999999 wei/gas: this one (a later nonce) "
        "would land behind it and every tx bidding between"
    )
    assert claims.conflict("b2", {Q}, 19) is None  # no bid given: pools only
    # settling b1 first may clear it: proven on 18, it may be mined by 19
    assert claims.may_have_landed({Q}, 18, tip=2_499_999_999) is False
    assert claims.may_have_landed({Q}, 19, tip=2_499_999_999) is True
    assert claims.may_have_landed({Q}, 19, tip=499_999_999) is False
    claims.release("b1", 19)
    assert claims.conflict("b2", {Q}, 19, tip=2_499_999_999) is None


def test_only_the_lanes_of_trades_that_may_have_landed_are_settled_first() -> None:
    """A settling pass before a conflicting bundle reads the lanes of the trades in its way,
    not every lane (each lane costs its own round trips while the bundle waits)."""
    claims = PoolClaims()
    claims.claim("b1", {P}, 10, tip=5, lane=2)  # in the way from block 11 on
    claims.claim("b2", {Q}, 12, tip=5, lane=1)  # in the way from block 13 on
    claims.claim("b3", {R}, 10, tip=9, lane=0)  # holds nothing the bundle trades, bids above
    assert claims.landed_lanes({P, Q}, 10) == frozenset()
    assert claims.landed_lanes({P, Q}, 11) == {2}
    assert claims.landed_lanes({P, Q}, 13) == {1, 2}
    assert claims.landed_lanes({P}, 13, tip=6, bundle_id="new") == {1, 2}  # b2 bids below
    assert claims.may_have_landed({P, Q}, 11) and not claims.may_have_landed({P, Q}, 10)
