"""Tracking and booking sent trades on an in-memory chain and a real SQLite ledger
(submit_world.py): reverts and losses trip the stop, a pool of our in-flight trade is settled
first (once per lane and block), a receipt lagging its nonce, and no bundle slips through the
gate while a settled trade is being booked off the loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.submit import settlement
from tests.unit.submit.gate_world import GWEI, HEAD, WETH, bundle, calldata
from tests.unit.submit.submit_world import DAI, PAIR_C, PAIR_D, World, world

__all__ = ["world"]  # the fixture, imported for pytest


async def test_three_reverts_in_a_row_trip_the_stop_until_the_key_is_written_again(
    world: World,
) -> None:
    sub = await world.start()
    for i in range(3):
        b = bundle(
            id=f"bundle:r{i}",
            opportunity_id=f"r{i}",
            block_number=world.chain.head,
            deadline_block=world.chain.head + 2,
        )
        await sub.handle(b, "t", 1)
        world.chain.mine(world.chain.sent[-1]["hash"], status=0)
        await sub.fetch_head()
        assert await sub.track_once() == 1
        assert world.outcome(b.id).status == "reverted"
    assert sub.tripped is not None
    reason = (
        "consecutive_reverts: 3 trades reverted on chain in a row "
        "(submit.max_consecutive_reverts 3)"
    )
    assert sub.tripped.reason == reason
    head = world.chain.head
    fourth = bundle(id="bundle:r3", opportunity_id="r3", block_number=head, deadline_block=head + 2)
    await sub.handle(fourth, "t", 1)
    assert len(world.chain.sent) == 3
    assert world.outcome(fourth.id).reason == f"emergency stop tripped: {reason}"

    restarted = world.new_submitter()  # persisted: a restart does not clear it
    assert restarted.tripped is not None and restarted.tripped.reason == reason
    restarted.stop_key_written(world.revision)  # the watcher replaying the old value
    assert restarted.tripped is not None
    restarted.stop_key_written(world.revision + 1)  # the operator wrote the key again
    assert restarted.tripped is None
    assert world.new_submitter().tripped is None
    # a clear starts a new window: the three old reverts do not count any more
    assert world.safety.spend(WETH).consecutive_reverts == 0


async def test_a_daily_loss_trips_the_stop(tmp_path: Path) -> None:
    world = World(tmp_path, daily_loss_limit=2 * 100_000 * 2 * GWEI - 1)
    sub = await world.start()
    for i in range(2):
        b = bundle(
            id=f"bundle:l{i}",
            opportunity_id=f"l{i}",
            block_number=world.chain.head,
            deadline_block=world.chain.head + 2,
        )
        await sub.handle(b, "t", 1)
        world.chain.mine(world.chain.sent[-1]["hash"], status=0)
        await sub.fetch_head()
        await sub.track_once()
    assert sub.tripped is not None
    assert sub.tripped.reason.startswith("daily_loss: lost 0.0004 ether today (gas 0.0004 ether")


async def test_a_pool_is_settled_first_when_our_trade_may_be_mined_at_the_bundles_block(
    world: World,
) -> None:
    """One trade per pool stays: a bundle through a pool of our in-flight trade is refused,
    unless that trade may be mined at the bundle's block (it was proven on an earlier one):
    then submit reads its receipt first and sends only if the trade did land by that block."""
    sub = await world.start()
    first = bundle()  # proven on HEAD, sent
    await sub.handle(first, "t", 1)
    same_block = bundle(id="bundle:o2", opportunity_id="o2")
    await sub.handle(same_block, "t", 1)  # proven on the same state: refused, no receipt read
    assert world.outcome("bundle:o2").reason.startswith("pool ")
    assert "in our unsettled trade bundle:o1" in world.outcome("bundle:o2").reason
    assert len(world.chain.sent) == 1

    world.chain.head += 1  # HEAD + 1 mined without our trade
    pending = bundle(id="bundle:o3", opportunity_id="o3", block_number=HEAD.number + 1,
                     deadline_block=HEAD.number + 3)  # fmt: skip
    await sub.handle(pending, "t", 1)  # its receipt is read: still on the wire, refused
    assert "in our unsettled trade bundle:o1" in world.outcome("bundle:o3").reason
    assert len(world.chain.sent) == 1

    world.chain.mine(world.chain.sent[0]["hash"], 1)  # our trade lands in HEAD + 2
    landed = bundle(id="bundle:o4", opportunity_id="o4", block_number=HEAD.number + 2,
                    deadline_block=HEAD.number + 4)  # fmt: skip
    await sub.handle(landed, "t", 1)  # proven on the state our trade landed in: sent
    assert world.outcome("bundle:o1").status == "included"
    assert len(world.chain.sent) == 2
    assert world.chain.sent[1]["nonce"] == 1


async def test_the_bundles_of_one_block_settle_our_trades_once_per_lane(world: World) -> None:
    """Settling first reads our lane's nonce (and receipts) as of the bundle's block: once per
    lane and block. Before, every bundle through a pool of our in-flight trade read them again, each
    waiting on its round trips (the gate's tail on the backrun flow: 29 of 82 sent bundles
    waited 9.9 / 63 ms p50 / p95 there)."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    served, reads = world.chain.call, []

    async def call(method: str, params: list[Any] | None = None) -> Any:
        if method == "eth_getTransactionCount" and params and params[1] == "latest":
            reads.append(params)
        return await served(method, params)

    world.chain.call = call  # type: ignore[method-assign]
    world.chain.head += 1  # HEAD + 1 mined without our trade
    for i in (2, 3):
        b = bundle(id=f"bundle:o{i}", opportunity_id=f"o{i}", block_number=HEAD.number + 1,
                   deadline_block=HEAD.number + 3)  # fmt: skip
        await sub.handle(b, "t", 1)
        assert "in our unsettled trade bundle:o1" in world.outcome(b.id).reason
    assert len(reads) == 1
    assert len(world.chain.sent) == 1

    world.chain.mine(world.chain.sent[0]["hash"], 1)  # our trade lands in HEAD + 2
    landed = bundle(id="bundle:o4", opportunity_id="o4", block_number=HEAD.number + 2,
                    deadline_block=HEAD.number + 4)  # fmt: skip
    await sub.handle(landed, "t", 1)  # a newer block: read again, settled, sent
    assert len(reads) == 2
    assert world.outcome("bundle:o1").status == "included"
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1]


async def test_a_landed_trade_whose_receipt_lags_its_nonce_is_booked_included(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """anvil counts a mined nonce a moment before it serves the receipt: an e2e run booked a
    landed trade as replaced by a tx not ours, its profit missing from the ledger."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    tx_hash = world.chain.sent[0]["hash"]
    world.chain.mine(tx_hash, 1)
    lagging = world.chain.receipts.pop(tx_hash)
    served = world.chain.call

    async def call(method: str, params: list[Any] | None = None) -> Any:
        if method == "eth_getTransactionReceipt" and tx_hash not in world.chain.receipts:
            world.chain.receipts[tx_hash] = lagging  # served from the next ask on
            return None
        return await served(method, params)

    world.chain.call = call  # type: ignore[method-assign]
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(settlement.asyncio, "sleep", sleep)
    assert await sub.track_once() == 1
    assert world.outcome("bundle:o1").status == "included"
    # asked again 20 ms on, not 250 ms on: the pass (and the bundles waiting on it) goes on
    assert slept == [0.02]


async def test_no_bundle_passes_the_gate_while_a_settled_trade_is_being_booked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third revert's commit runs off the loop (resolve_off_loop): a bundle of other pools
    handled meanwhile must wait for it and meet the stop it trips, not slip through first."""
    sub = await world.start()
    reverted = []
    for i in range(3):
        head = world.chain.head
        b = bundle(id=f"bundle:r{i}", opportunity_id=f"r{i}", block_number=head,
                   deadline_block=head + 2)  # fmt: skip
        await sub.handle(b, "t", 1)
        world.chain.mine(world.chain.sent[-1]["hash"], status=0)
        await sub.fetch_head()
        reverted.append(b)
        if i < 2:
            assert await sub.track_once() == 1
    booking, release = asyncio.Event(), asyncio.Event()
    resolve = world.ledger.resolve_off_loop

    async def held(*args: Any) -> None:
        booking.set()
        await release.wait()
        await resolve(*args)

    monkeypatch.setattr(world.ledger, "resolve_off_loop", held)
    tracking = asyncio.create_task(sub.track_once())
    await booking.wait()
    head = world.chain.head
    elsewhere = [(PAIR_C, WETH, DAI, 30), (PAIR_D, DAI, WETH, 30)]
    other = bundle(id="bundle:x", opportunity_id="x", data=calldata(elsewhere),
                   block_number=head, deadline_block=head + 2)  # fmt: skip
    handled = asyncio.create_task(sub.handle(other, "t", 1))
    for _ in range(20):  # the handler runs as far as it may
        await asyncio.sleep(0)
    release.set()
    assert await tracking == 1
    await handled
    assert world.outcome(reverted[2].id).status == "reverted"
    assert len(world.chain.sent) == 3
    assert sub.tripped is not None
    assert world.outcome(other.id).reason == f"emergency stop tripped: {sub.tripped.reason}"
