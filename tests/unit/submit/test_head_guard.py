"""A forged block message cannot raise submit's head past what the chain confirmed (the bus is
hostile: anyone able to publish on mev.<chain>.blocks). Before head_guard.py one message with a
very high number made the gate refuse every bundle for good (the head only rises)."""

from __future__ import annotations

from typing import Any

from mev_common import metrics
from mev_common.messages import Block

from services.submit.block_feed import saw_block
from services.submit.head_guard import HeadGuard
from tests.unit.submit.fake_chain import block_hash
from tests.unit.submit.gate_world import CHAIN, HEAD, bundle
from tests.unit.submit.submit_world import World, world

__all__ = ["world"]  # the fixture, imported for pytest


def block(number: int) -> Block:
    return Block(
        chain_id=CHAIN,
        number=number,
        hash=block_hash(number),
        parent_hash=block_hash(number - 1),
        timestamp=1_700_000_000 + number,
        base_fee_per_gas=10**9,
        gas_used=15_000_000,
        gas_limit=30_000_000,
    )


def unconfirmed() -> float:
    return metrics.ERRORS.labels(kind="submit_head_unconfirmed")._value.get()


def test_the_ceiling_is_the_confirmed_head_plus_slack_plus_a_block_per_block_time() -> None:
    guard = HeadGuard(block_time_s=2.0)
    assert guard.ceiling(10.0) == -1 and not guard.admits(0, 10.0)  # no RPC read yet
    guard.confirm(100, now=10.0)
    assert [guard.ceiling(t) for t in (10.0, 11.9, 12.0, 15.9, 16.0)] == [101, 101, 102, 103, 104]
    assert guard.admits(101, 10.0) and not guard.admits(102, 10.0)
    assert guard.ceiling(10.0 + 2.0 * 60) == guard.ceiling(10.0 + 2.0 * 1000) == 161  # horizon
    # past the horizon only: routine (an INFO line); past what the block time allows: not
    assert guard.routine(1101, 10.0 + 2.0 * 1000) and not guard.routine(1102, 10.0 + 2.0 * 1000)
    assert not guard.routine(102, 10.0)
    guard.confirm(99, now=20.0)  # a lagging node's older head is ignored
    assert (guard.confirmed, guard.confirmed_at) == (100, 10.0)
    guard.confirm(100, now=20.0)  # the chain still at 100 later: the ceiling tightens
    assert guard.ceiling(20.0) == 101
    # a refused head is read from the chain at most once per half block time
    assert [guard.check_due(t) for t in (20.0, 20.5, 20.99, 21.0)] == [True, False, False, True]


async def test_a_forged_high_block_message_does_not_refuse_every_bundle(world: World) -> None:
    sub = await world.start()
    before = unconfirmed()
    saw_block(sub, block(10**9))  # forged: the chain's head is 100
    assert sub.head.number == HEAD.number
    assert unconfirmed() == before + 1
    assert sub.head_check is not None
    await sub.head_check  # read off the hot path: the chain says 100
    assert sub.head.number == HEAD.number
    b = bundle()  # proven on the chain's head: still sent
    await sub.handle(b, "t", 1)
    assert len(world.chain.sent) == 1
    assert [(t.kind, t.state) for t in world.ledger.txs_of(b.id)] == [("trade", "sent")]


async def test_the_next_block_is_taken_at_once_and_a_confirmed_jump_after_a_read(
    world: World,
) -> None:
    sub = await world.start()
    served, reads = world.chain.call, []

    async def call(method: str, params: list[Any] | None = None) -> Any:
        reads.append(method)
        return await served(method, params)

    world.chain.call = call  # type: ignore[method-assign]
    world.chain.head += 1
    saw_block(sub, block(world.chain.head))  # the next block: no RPC call
    assert (sub.head.number, reads, sub.head_check) == (HEAD.number + 1, [], None)
    world.chain.head += 4  # a burst of blocks (a chain faster than block_time_s)
    assert not sub.on_streamed_block(block(world.chain.head))
    assert sub.head.number == HEAD.number + 1  # not taken on the message's word
    assert sub.head_check is not None
    await sub.head_check
    assert (sub.head.number, reads) == (HEAD.number + 5, ["eth_getBlockByNumber"])
