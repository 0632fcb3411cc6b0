"""A block trade that missed its block, through submit's tracking pass (late_blocks.py): asked at
the head only then, once per head, and cancelled only when the node says it reverts there.
In-memory chain, real SQLite ledger, in the world of submit_world.py."""

from __future__ import annotations

from pathlib import Path

from services.submit.submitter import Submitter
from tests.unit.submit.gate_world import EXECUTOR, GAS, HEAD, bundle
from tests.unit.submit.submit_world import World, world

__all__ = ["world"]  # the fixture, imported for pytest


async def sent_block_trade(world: World, deadline: int = HEAD.number + 2) -> Submitter:
    sub = await world.start()
    await sub.handle(bundle(deadline_block=deadline), "t", 1)  # proven on HEAD, for HEAD + 1
    assert len(world.chain.sent) == 1
    return sub


async def test_a_block_trade_not_past_its_block_costs_no_call(world: World) -> None:
    sub = await sent_block_trade(world)
    for _ in range(3):
        await sub.track_once()
    assert world.chain.eth_calls == []
    world.chain.mine(world.chain.sent[0]["hash"], 1)  # it landed in HEAD + 1
    await sub.fetch_head()
    assert await sub.track_once() == 1
    assert world.chain.eth_calls == []


async def test_a_block_trade_that_missed_its_block_and_still_pays_is_left(tmp_path: Path) -> None:
    world = World(tmp_path)
    detect = world.settings.detect.model_copy(update={"deadline_blocks": 5})
    world.settings = world.settings.model_copy(update={"detect": detect})  # may wait 5 blocks
    world.submitter = world.new_submitter()
    sub = await sent_block_trade(world, deadline=HEAD.number + 5)
    world.chain.head += 1  # HEAD + 1 mined without it
    await sub.fetch_head()
    for _ in range(3):  # asked once at this head: the node said it pays
        await sub.track_once()
    assert world.chain.eth_calls == [
        {
            "from": sub.signer.address,
            "to": EXECUTOR.lower(),
            "data": bundle().data,
            "value": "0x0",
            "gas": hex(GAS),
        }
    ]
    world.chain.head += 1
    await sub.fetch_head()
    await sub.track_once()  # a new head: asked again
    assert len(world.chain.eth_calls) == 2 and world.chain.eth_calls[1] == world.chain.eth_calls[0]
    world.chain.mine(world.chain.sent[0]["hash"], 1)  # left to land: it does
    await sub.fetch_head()
    assert await sub.track_once() == 1
    assert world.outcome("bundle:o1").status == "included"
    assert len(world.chain.sent) == 1  # no cancel


async def test_a_block_trade_that_missed_its_block_and_reverts_is_cancelled(world: World) -> None:
    sub = await sent_block_trade(world)
    world.chain.call_reverts = True
    world.chain.head += 1
    await sub.fetch_head()
    await sub.track_once()
    [trade, cancel] = world.chain.sent
    assert (cancel["nonce"], cancel["value"], cancel["gas"]) == (trade["nonce"], 0, 21_000)
    assert len(world.chain.eth_calls) == 1
    await sub.track_once()  # being cancelled: not asked again
    assert len(world.chain.eth_calls) == 1
    world.chain.mine(cancel["hash"], 1, gas_used=21_000)
    await sub.fetch_head()
    assert await sub.track_once() == 1
    outcome = world.outcome("bundle:o1")
    assert outcome.status == "replaced"
    assert outcome.reason == (
        f"cancelled (withdrawn): nonce 0 used by our 0-value tx {cancel['hash']}, trade "
        f"{trade['hash']} never mined: block trade proven on block {HEAD.number} missed block "
        f"{HEAD.number + 1}; at head {HEAD.number + 1} it reverts (eth_call: execution reverted)"
    )


async def test_a_revert_of_a_trade_mined_just_before_its_call_cancels_nothing(
    world: World,
) -> None:
    """The trade is mined between the pass's nonce read and its eth_call: the call runs it on
    its own result and reverts. The nonce read again after the call counts it: no cancel."""
    sub = await sent_block_trade(world)
    world.chain.call_reverts = True
    world.chain.head += 1
    await sub.fetch_head()
    trade = world.chain.sent[0]["hash"]
    world.chain.before_call = lambda: world.chain.mine(trade, 1)
    await sub.track_once()
    assert len(world.chain.eth_calls) == 1
    assert len(world.chain.sent) == 1  # no cancel
    await sub.fetch_head()
    assert await sub.track_once() == 1
    assert world.outcome("bundle:o1").status == "included"
