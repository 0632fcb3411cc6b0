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
