"""A broadcast's answer is awaited after the bundle's turn at the gate (turns.py), so the next
bundle is gated, signed and sent meanwhile, on another lane; a lane whose broadcast awaits its
answer takes no nonce, so a refused send gives its nonce back with no later nonce taken behind
it (no gap on one sender). Bundles are handled concurrently here, as the consumer does
(services/submit/service.py); each broadcast is held (FakeChain.hold) until the test lets it
answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from services.submit.ledger_records import TxRecord
from tests.unit.submit.gate_world import GWEI, WETH, bundle, calldata
from tests.unit.submit.submit_world import DAI, PAIR_C, PAIR_D, World, world

__all__ = ["world"]  # the fixture, imported for pytest

ELSEWHERE = calldata([(PAIR_C, WETH, DAI, 30), (PAIR_D, DAI, WETH, 30)])  # other pools
VICTIM = {"victim_tx_hash": "0x" + "ab" * 32, "victim_priority_fee": 2 * GWEI}


async def until(what: Callable[[], bool]) -> None:
    """Let the loop run until `what` holds (bounded by passes, never by time)."""
    for _ in range(1_000):
        if what():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def trade(world: World, bundle_id: str) -> TxRecord:
    found = world.ledger.trade_for(bundle_id)
    assert found is not None
    return found


async def test_a_backrun_is_signed_and_sent_while_an_earlier_broadcast_awaits_its_answer(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, lanes=3)
    sub = await world.start()
    world.chain.hold = asyncio.Event()
    block = bundle(id="bundle:block", opportunity_id="block")
    backrun = bundle(id="bundle:backrun", opportunity_id="backrun", data=ELSEWHERE, **VICTIM)
    first = asyncio.create_task(sub.handle(block, "t", 1))
    await until(lambda: len(world.chain.sent) == 1)
    second = asyncio.create_task(sub.handle(backrun, "t", 1))
    await until(lambda: len(world.chain.sent) == 2)
    assert world.chain.answered == []  # the block trade's broadcast is still unanswered
    lanes = sub.lanes
    assert trade(world, block.id).sender == lanes[0].address
    assert trade(world, backrun.id).sender == lanes[1].address  # the lane not awaiting one
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 0]  # each lane's first
    # each signed tx was committed before its broadcast left
    assert [t.state for t in (trade(world, block.id), trade(world, backrun.id))] == ["signed"] * 2
    world.chain.hold.set()
    await asyncio.gather(first, second)
    assert [t.state for t in (trade(world, block.id), trade(world, backrun.id))] == ["sent"] * 2
    assert [(lane.nonces.next_nonce, lane.nonces.in_flight) for lane in lanes] == [
        (1, {0}),
        (1, {0}),
        (0, set()),
    ]
    assert all(lane.unanswered is None for lane in lanes)


async def test_on_one_lane_the_next_trade_waits_for_the_answer_and_reuses_a_refused_nonce(
    tmp_path: Path,
) -> None:
    """One sender: the second bundle is gated but takes no nonce while the first broadcast is
    unanswered; that one is refused by every node (it never reached a pool), so its nonce comes
    back and the second trade goes out on it. No gap: nonce 1 is never signed."""
    world = World(tmp_path)
    sub = await world.start()
    world.chain.hold, world.chain.refuse = asyncio.Event(), 1
    refused = bundle(id="bundle:refused", opportunity_id="refused")
    later = bundle(id="bundle:later", opportunity_id="later", data=ELSEWHERE)
    first = asyncio.create_task(sub.handle(refused, "t", 1))
    await until(lambda: len(world.chain.sent) == 1)
    second = asyncio.create_task(sub.handle(later, "t", 1))
    for _ in range(50):  # let it run as far as it can
        await asyncio.sleep(0)
    assert len(world.chain.sent) == 1 and world.ledger.txs_of(later.id) == []  # nothing signed
    assert sub.nonces.next_nonce == 1
    world.chain.hold.set()
    await asyncio.gather(first, second)
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 0]  # the refused one never pooled
    assert [(t.kind, t.state) for t in world.ledger.txs_of(refused.id)] == [("trade", "rejected")]
    assert world.outcome(refused.id).status == "not_sent"
    assert [(t.nonce, t.state) for t in world.ledger.txs_of(later.id)] == [(0, "sent")]
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, {0})
    [pooled] = world.chain.pool.values()
    assert pooled["hash"] == trade(world, later.id).hash


async def test_a_nonce_taken_while_the_chains_count_is_read_is_not_handed_out_again(
    world: World,
) -> None:
    """A resync (a refused send's, a dropped trade's, nonce_reset) runs beside the gate: a
    bundle signed while the count is asked is unresolved when the count is applied, so the
    next nonce stays past it even when the node answered before our tx reached it."""
    sub = await world.start()
    world.chain.count_hold = asyncio.Event()
    resync = asyncio.create_task(sub.sync_nonces())
    await asyncio.sleep(0)  # the count is read (0: no tx of ours yet) and not yet answered
    await sub.handle(bundle(), "t", 1)
    assert [tx["nonce"] for tx in world.chain.sent] == [0]
    world.chain.count_hold.set()
    await resync
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, {0})
    world.chain.count_hold = None
    await sub.handle(bundle(id="bundle:o2", opportunity_id="o2", data=ELSEWHERE), "t", 1)
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1]


async def test_a_handler_cancelled_while_its_broadcast_is_unanswered_frees_the_lane(
    world: World,
) -> None:
    """Shutdown: no verdict, as an unknown one: the tx stays signed and its nonce held for
    tracking, and the lane takes the next nonce."""
    sub = await world.start()
    world.chain.hold = asyncio.Event()
    task = asyncio.create_task(sub.handle(bundle(), "t", 1))
    await until(lambda: len(world.chain.sent) == 1)
    assert sub.lanes[0].unanswered is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sub.lanes[0].unanswered is None
    assert [(t.state, t.nonce) for t in world.ledger.txs_of("bundle:o1")] == [("signed", 0)]
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, {0})
