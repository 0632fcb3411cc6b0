"""Under an RPC call budget, settling what is on the chain comes before sending more."""

from __future__ import annotations

from mev_common.chain.budget import CallBudget

from services.submit.budget_room import may_send, may_track


def test_a_steady_flow_of_bundles_never_starves_the_tracking_of_sent_trades() -> None:
    """Submit's HyperEVM share (25 calls a minute), a bundle every second for three minutes
    and a tracking pass due every second while a trade is unresolved. Before: sends took the
    share up to its edge and the pass (asking to keep 10% free) was skipped for as long as
    bundles came (a CI run ended with two landed trades never booked)."""
    now = [0.0]
    share = CallBudget(25, clock=lambda: now[0])
    unresolved: list[float] = []  # when each unsettled trade was sent
    sent = waited_most = 0.0
    for second in range(180):
        now[0] = float(second)
        if unresolved and may_track(share):
            share.spend(2)  # the lane's nonce, one receipts batch
            waited_most = max(waited_most, now[0] - unresolved[0])
            unresolved.clear()
        if may_send(share):
            share.spend(1)  # the send; the pass that settles it pays the rest
            unresolved.append(now[0])
            sent += 1
    assert waited_most <= 5.0, waited_most
    assert sent >= 20  # the budget still lets trades through


def test_a_pass_fits_where_a_new_trade_does_not() -> None:
    share = CallBudget(25, clock=lambda: 0.0)
    share.spend(20)
    assert may_track(share) and not may_send(share)  # 20 + 3 > 22.5; 20 + 2 <= 25
    share.spend(3)
    assert may_track(share)  # 23 + 2 <= 25
    share.spend(1)
    assert not may_track(share)
