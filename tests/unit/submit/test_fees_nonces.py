"""Fees never exceed the cap and put a backrun right after its victim; nonces stay bounded."""

from __future__ import annotations

import pytest

from services.submit.fees import FeeRefusal, Fees, bundle_fees, cancel_fees, next_base_fee
from services.submit.nonces import NonceManager, NoNonceFree

GWEI = 10**9


def test_base_fee_follows_eip_1559() -> None:
    assert next_base_fee(GWEI, 15_000_000, 30_000_000) == GWEI
    assert next_base_fee(GWEI, 30_000_000, 30_000_000) == GWEI + GWEI // 8
    assert next_base_fee(GWEI, 0, 30_000_000) == GWEI - GWEI // 8


def test_fees_are_capped_by_bundle_and_strategy() -> None:
    fees = bundle_fees(
        next_base=10 * GWEI, bundle_cap=15 * GWEI, strategy_cap=50 * GWEI, default_priority=GWEI
    )
    assert fees == Fees(max_fee_per_gas=15 * GWEI, max_priority_fee_per_gas=GWEI)
    fees = bundle_fees(
        next_base=GWEI, bundle_cap=50 * GWEI, strategy_cap=2 * GWEI, default_priority=5 * GWEI
    )
    assert fees == Fees(max_fee_per_gas=2 * GWEI, max_priority_fee_per_gas=GWEI)


def test_base_fee_above_cap_or_no_cap_is_refused() -> None:
    assert bundle_fees(
        next_base=3 * GWEI, bundle_cap=2 * GWEI, strategy_cap=50 * GWEI, default_priority=GWEI
    ) == FeeRefusal(f"base fee {3 * GWEI} above the fee cap {2 * GWEI}")
    assert isinstance(
        bundle_fees(next_base=0, bundle_cap=0, strategy_cap=50 * GWEI, default_priority=1),
        FeeRefusal,
    )


@pytest.mark.parametrize(("victim", "ours"), [(3 * GWEI, 3 * GWEI - 1), (1, 1), (0, 1)])
def test_backrun_bids_one_wei_below_its_victim(victim: int, ours: int) -> None:
    fees = bundle_fees(
        next_base=GWEI,
        bundle_cap=20 * GWEI,
        strategy_cap=50 * GWEI,
        default_priority=GWEI,
        bundle_priority=7 * GWEI,
        victim_priority=victim,
    )
    assert fees == Fees(max_fee_per_gas=2 * GWEI + ours, max_priority_fee_per_gas=ours)


def test_a_backrun_whose_cap_cannot_bid_under_its_victim_is_refused() -> None:
    """Cut to what the cap leaves (1 gwei + 7), users tipping between 1 and 1.8 gwei through
    its pools would land between the victim and it: before, it was sent and reverted."""
    fees = bundle_fees(
        next_base=7,
        bundle_cap=GWEI + 14,
        strategy_cap=50 * GWEI,
        default_priority=GWEI,
        victim_priority=1_800_000_000,
    )
    assert fees == FeeRefusal(
        f"backrun must bid 1799999999 wei/gas (one under its victim's tip), its fee cap "
        f"{GWEI + 14} leaves {GWEI + 7} over the base fee 7: it would land behind txs it was "
        "not proven behind"
    )
    # the cap detect now gives it (2 x base + the victim's tip) pays the bid
    ok = bundle_fees(next_base=7, bundle_cap=14 + 1_800_000_000, strategy_cap=50 * GWEI,
                     default_priority=GWEI, victim_priority=1_800_000_000)  # fmt: skip
    assert ok == Fees(max_fee_per_gas=14 + 1_799_999_999, max_priority_fee_per_gas=1_799_999_999)


def test_cancel_outbids_the_replaced_tx_by_the_replacement_rule() -> None:
    old = Fees(max_fee_per_gas=3 * GWEI, max_priority_fee_per_gas=GWEI)
    fees = cancel_fees(old, next_base=GWEI)
    assert fees.max_priority_fee_per_gas * 10 >= old.max_priority_fee_per_gas * 11
    assert fees.max_fee_per_gas * 10 >= old.max_fee_per_gas * 11
    assert fees == Fees(3 * GWEI + 3 * GWEI // 8 + 1, GWEI + GWEI // 8 + 1)


def test_nonces_bounded_by_max_in_flight_and_synced_past_unresolved() -> None:
    nonces = NonceManager(max_in_flight=2)
    with pytest.raises(NoNonceFree):
        nonces.take()
    nonces.sync(chain_pending=5, unresolved={6})  # 6 recorded, maybe never seen by the node
    assert nonces.next_nonce == 7
    # 7 would be the third nonce past the chain's count 5 (5, 6, 7): outside a window of 2
    with pytest.raises(NoNonceFree, match="ahead of the chain"):
        nonces.take()
    nonces.confirmed_up_to(6)  # the chain counted nonce 5 (whoever sent it)
    assert nonces.take() == 7
    with pytest.raises(NoNonceFree, match="2 txs unconfirmed"):
        nonces.take()
    nonces.release(6)
    nonces.confirmed_up_to(7)
    assert nonces.take() == 8
    nonces.give_back(8)
    assert (nonces.next_nonce, nonces.in_flight) == (8, {7})
    nonces.confirmed_up_to(9)
    assert (nonces.next_nonce, nonces.in_flight) == (9, set())


def test_a_resync_on_a_lagging_count_stays_past_the_nonces_our_receipts_show_mined() -> None:
    nonces = NonceManager(max_in_flight=4)
    nonces.sync(chain_pending=7, mined=8)  # our receipt: nonce 7 mined; the node counts 7
    assert (nonces.next_nonce, nonces.chain_count) == (8, 8)
    nonces.sync(chain_pending=9, unresolved={9}, mined=8)  # the node ahead: its count holds
    assert (nonces.next_nonce, nonces.in_flight) == (10, {9})
