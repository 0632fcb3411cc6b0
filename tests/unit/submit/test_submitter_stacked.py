"""Trades stacked on our own unsettled trades (Bundle.after_bundles) through the whole submit
decision: sent with the next nonce, cancelled when what they stand on will not land
(stack_cancel.py), left alone when they were proven to pay without it. In-memory chain, real
SQLite ledger, in the world of submit_world.py."""

from __future__ import annotations

from typing import Any

from services.submit.submitter import Submitter
from tests.unit.submit.gate_world import HEAD, bundle
from tests.unit.submit.submit_world import World, world

__all__ = ["world"]  # the fixture, imported for pytest


async def test_a_bundle_stacked_on_our_trade_is_sent_with_the_next_nonce(world: World) -> None:
    """simulate proved it on top of our unsettled trade (Bundle.after_bundles): sent while
    that trade is in flight, refused once it is withdrawn (it is cancelled, and so is the sent
    one stacked on it: stack_cancel.py)."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    stacked = bundle(id="bundle:o2", opportunity_id="o2", after_bundles=["bundle:o1"])
    await sub.handle(stacked, "t", 1)
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1]
    await sub.withdraw("o1", "a later swap moves the pool")  # its cancel takes nonce 0
    late = bundle(id="bundle:o3", opportunity_id="o3", after_bundles=["bundle:o1"])
    await sub.handle(late, "t", 1)
    assert world.outcome("bundle:o3").reason == (
        "proven on top of our trade bundle:o1, withdrawn by detect"
    )
    never = bundle(id="bundle:o4", opportunity_id="o4", after_bundles=["bundle:o9"])
    await sub.handle(never, "t", 1)
    assert world.outcome("bundle:o4").reason == (
        "proven on top of our trade bundle:o9, which is not in flight"
    )
    # trade, stacked, the trade's cancel, the stacked one's cancel
    assert [(tx["nonce"], tx["gas"]) for tx in world.chain.sent][2:] == [(0, 21_000), (1, 21_000)]
    assert [t.kind for t in world.ledger.txs_of("bundle:o2")] == ["trade", "cancel"]
    assert "bundle:o2" in sub.withdrawn  # nothing new is sent on top of it either


async def base_and_stacked(world: World, **stacked: Any) -> Submitter:
    """Our trade o1 (nonce 0) and o2 stacked on it (nonce 1), both sent."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    fields = {"id": "bundle:o2", "opportunity_id": "o2", "after_bundles": ["bundle:o1"]}
    await sub.handle(bundle(**{**fields, **stacked}), "t", 1)
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1]
    return sub


async def test_a_stacked_trade_proven_to_pay_alone_stands_when_its_base_is_withdrawn(
    world: World,
) -> None:
    sub = await base_and_stacked(world, pays_alone=True)
    await sub.withdraw("o1", "a later swap moves the pool")
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1, 0]  # only the base's cancel
    assert [t.kind for t in world.ledger.txs_of("bundle:o2")] == ["trade"]


async def test_a_base_that_reverts_takes_down_the_trades_stacked_on_it(world: World) -> None:
    """Two levels: o2 on o1, o3 on o2. o1 mined reverted: o2 and o3 (nonces 1, 2) cancelled."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    for n, after in ((2, ["bundle:o1"]), (3, ["bundle:o1", "bundle:o2"])):
        await sub.handle(bundle(id=f"bundle:o{n}", opportunity_id=f"o{n}", after_bundles=after),
                         "t", 1)  # fmt: skip
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1, 2]
    world.chain.mine(world.chain.sent[0]["hash"], 0)
    assert await sub.track_once() == 1
    assert world.outcome("bundle:o1").status == "reverted"
    assert [(tx["nonce"], tx["gas"]) for tx in world.chain.sent[3:]] == [(1, 21_000), (2, 21_000)]
    assert await sub.track_once() == 0  # cancels out, nothing sent twice
    assert len(world.chain.sent) == 5


async def test_a_base_replaced_by_a_tx_not_ours_takes_down_the_one_stacked_on_it(
    world: World,
) -> None:
    sub = await base_and_stacked(world)
    world.chain.pool.pop(world.chain.sent[0]["hash"])
    world.chain.mined_nonce = 1  # nonce 0 used by someone else's tx with our key
    assert await sub.track_once() == 1
    assert world.outcome("bundle:o1").status == "replaced"
    assert [(tx["nonce"], tx["gas"]) for tx in world.chain.sent[2:]] == [(1, 21_000)]


async def test_a_base_that_lands_or_a_stacked_trade_already_mined_cancels_nothing(
    world: World,
) -> None:
    sub = await base_and_stacked(world)
    base, stacked = (tx["hash"] for tx in world.chain.sent)
    world.chain.mine(base, 1)  # landed
    assert await sub.track_once() == 1
    assert len(world.chain.sent) == 2
    world.chain.mine(stacked, 1)
    assert await sub.track_once() == 1
    assert [world.outcome(b).status for b in ("bundle:o1", "bundle:o2")] == ["included"] * 2
    # reverted with the stacked one mined in the same block: its nonce is used, no cancel
    await sub.handle(bundle(id="bundle:o5", opportunity_id="o5", block_number=HEAD.number + 2,
                            deadline_block=HEAD.number + 4), "t", 1)  # fmt: skip
    await sub.handle(bundle(id="bundle:o6", opportunity_id="o6", block_number=HEAD.number + 2,
                            deadline_block=HEAD.number + 4, after_bundles=["bundle:o5"]),
                     "t", 1)  # fmt: skip
    base, stacked = (tx["hash"] for tx in world.chain.sent[2:])
    world.chain.mine(base, 0)
    world.chain.mine(stacked, 1)
    assert await sub.track_once() == 2
    assert [world.outcome(b).status for b in ("bundle:o5", "bundle:o6")] == ["reverted", "included"]
    assert len(world.chain.sent) == 4  # no cancel
