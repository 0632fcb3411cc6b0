"""The submitter's gate on an in-memory chain and a real SQLite ledger (submit_world.py): a
bundle signed once, forged or stale ones refused, the tx-cost trip, cancels and their caps,
the RPC budget and the late-head refusal; exact counts of what was signed and broadcast.
Tracking, settling and the trips it books: test_settlement.py."""

from __future__ import annotations

import time
from pathlib import Path

from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.block_phase import LATE_HEAD

from tests.unit.submit.gate_world import GWEI, bundle
from tests.unit.submit.submit_world import World, world

__all__ = ["world"]  # the fixture, imported for pytest


async def test_a_bundle_is_signed_once_even_when_redelivered(world: World) -> None:
    sub = await world.start()
    b = bundle()
    await sub.handle(b, "t", 1)
    await sub.handle(b, "t", 1)  # redelivery: its trade is on the wire
    assert len(world.chain.sent) == 1
    [tx] = world.chain.sent
    assert (tx["nonce"], tx["to"], tx["value"], tx["gas"]) == (0, b.to, 0, b.gas_limit)
    assert (tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]) == (3 * GWEI, GWEI)
    assert [(t.kind, t.state) for t in world.ledger.txs_of(b.id)] == [("trade", "sent")]


async def test_a_forged_bundle_signs_nothing(world: World) -> None:
    sub = await world.start()
    await sub.handle(bundle(value=1), "t", 1)
    assert world.chain.sent == []
    assert world.ledger.txs_of("bundle:o1") == []
    assert world.outcome("bundle:o1").reason == (
        "bundle.value is 1 wei: an executor call never carries value"
    )


async def test_the_head_comes_from_the_chain_not_the_bundle(world: World) -> None:
    sub = await world.start()
    # a bundle claiming block 10**6 is checked against the chain, whose head stays 100
    await sub.handle(bundle(block_number=10**6, deadline_block=10**6 + 1), "t", 1)
    assert world.chain.sent == []
    assert world.outcome("bundle:o1").reason == (
        "stale: block 1000000 does not exist on this chain (head 100)"
    )


async def test_over_the_tx_cost_cap_trips_and_sends_nothing(tmp_path: Path) -> None:
    world = World(tmp_path, max_tx_cost=400_000 * 3 * GWEI - 1)
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    assert world.chain.sent == []
    assert sub.tripped is not None and sub.tripped.reason.startswith("tx_cost: ")
    assert world.outcome("bundle:o1").reason == sub.tripped.reason


async def test_a_hundred_withdrawals_cause_one_cancel_at_most_the_cap(world: World) -> None:
    sub = await world.start()
    b = bundle()
    await sub.handle(b, "t", 1)
    for _ in range(100):
        await sub.withdraw("o1", "a later swap moves the pool")
    kinds = [t.kind for t in world.ledger.txs_of(b.id)]
    assert kinds == ["trade", "cancel"]
    assert len(world.chain.sent) == 2
    cancel = world.chain.sent[1]
    assert (cancel["nonce"], cancel["value"], cancel["gas"]) == (0, 0, 21_000)
    assert cancel["maxFeePerGas"] <= 50 * GWEI


async def test_cancels_stop_at_the_per_nonce_count_and_at_max_gas_price(tmp_path: Path) -> None:
    world = World(tmp_path, max_cancels_per_nonce=2)
    sub = await world.start()
    b = bundle()
    await sub.handle(b, "t", 1)
    trade = world.ledger.trade_for(b.id)
    assert trade is not None
    for _ in range(5):  # tracking keeps asking to outbid the pending cancel
        await sub._cancel(trade, world.ledger.txs_of(b.id)[-1])
    assert [t.kind for t in world.ledger.txs_of(b.id)] == ["trade", "cancel", "cancel"]

    world2 = World(tmp_path / "2")
    sub2 = await world2.start()
    b2 = bundle(max_fee_per_gas=45 * GWEI)
    await sub2.handle(b2, "t", 1)
    trade2 = world2.ledger.trade_for(b2.id)
    assert trade2 is not None
    for _ in range(3):
        await sub2._cancel(trade2, world2.ledger.txs_of(b2.id)[-1])
    fees = [t["maxFeePerGas"] for t in world2.chain.sent]
    assert all(f <= 50 * GWEI for f in fees), fees
    assert len(fees) == 1 + 3  # the trade and max_cancels_per_nonce (3) cancels, each bumped
    assert fees == sorted(fees) and len(set(fees)) == 4


async def test_the_cap_refuses_a_replacement_that_must_bid_above_it(world: World) -> None:
    sub = await world.start()
    world.chain.base_fee = 23 * GWEI
    world.chain.head += 1
    await sub.fetch_head()  # next base fee 23 gwei: the trade bids 2 x 23 + 1 = 47 gwei
    b = bundle(max_fee_per_gas=50 * GWEI, block_number=world.chain.head)
    b = b.model_copy(update={"deadline_block": world.chain.head + 2})
    await sub.handle(b, "t", 1)
    [trade_tx] = world.chain.sent
    assert trade_tx["maxFeePerGas"] == 47 * GWEI  # a replacement must bid > 52.8 gwei
    await sub.withdraw("o1", "moved")
    assert len(world.chain.sent) == 1  # no cancel above max_gas_price (50 gwei)
    assert [t.kind for t in world.ledger.txs_of(b.id)] == ["trade"]


async def test_past_its_rpc_budget_share_a_bundle_is_let_go_unsigned(world: World) -> None:
    """HyperEVM: a trade costs 3 calls; with the share spent, nothing is signed or sent."""
    sub = await world.start()
    spent = budget.configure(100, 0.05)  # 5 calls a minute for this process
    try:
        spent.spend(3)
        await sub.handle(bundle(), "t", 1)
        assert world.chain.sent == [] and world.ledger.txs_of("bundle:o1") == []
        assert "RPC call budget spent" in world.outcome("bundle:o1").reason
        assert sub.nonces.next_nonce == 0  # no nonce taken
    finally:
        budget.configure(None)


async def test_a_late_polled_head_is_let_go_unsigned(world: World) -> None:
    """HyperEVM's polled head: while ingest's phase estimate says the bundle's block is
    nearly a block old (the next one would come first), nothing is signed or sent."""
    sub = await world.start()
    b = bundle()
    refusals = metrics.LATE_HEAD_REFUSALS._value.get()
    sub.production.saw(b.block_number, time.time_ns() - 5 * 10**9)  # 5 s ago
    await sub.handle(b, "t", 1)
    assert world.chain.sent == [] and world.ledger.txs_of(b.id) == []
    assert world.outcome(b.id).status == "not_sent"
    assert world.outcome(b.id).reason.startswith(LATE_HEAD)
    assert metrics.LATE_HEAD_REFUSALS._value.get() == refusals + 1
    assert sub.nonces.next_nonce == 0  # no nonce taken
    sub.production.saw(b.block_number + 1, None)  # not locked: today's behaviour
    other = bundle(id="bundle:o2", opportunity_id="o2")
    await sub.handle(other, "t", 1)
    assert len(world.chain.sent) == 1


async def test_a_trade_bidding_above_our_unsettled_one_is_not_signed(world: World) -> None:
    """Sent with the next nonce it would land behind our trade and every tx bidding between
    (conflicts.py), even stacked on it."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)  # a block trade: submit.priority_fee (1 gwei)
    above = {"id": "bundle:o2", "opportunity_id": "o2", "after_bundles": ["bundle:o1"],
             "victim_tx_hash": "0x" + "ab" * 32,
             "victim_priority_fee": 2 * GWEI}  # fmt: skip
    await sub.handle(bundle(**above), "t", 1)
    assert len(world.chain.sent) == 1
    refusal = (
        f"our unsettled trade bundle:o1 bids {GWEI} < {2 * GWEI - 1} wei/gas: this one "
        "(a later nonce) would land behind it and every tx bidding between"
    )
    assert world.outcome("bundle:o2").reason == refusal
    world.submitter = world.new_submitter()  # a restart: the bid is read back from the ledger
    sub = await world.start()
    await sub.handle(bundle(**{**above, "id": "bundle:o3", "opportunity_id": "o3"}), "t", 1)
    assert len(world.chain.sent) == 1
    assert world.outcome("bundle:o3").reason == refusal
