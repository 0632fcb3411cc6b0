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
