"""After a refused send the lane is free before the nonce resync answers (Submitter._after_send:
the refusal booked, its nonce given back, the lane answered, then `sync_nonces` awaits the
chain's count). A trade gated in that gap takes the given-back nonce: this pins that no
unresolved tx of ours holds it then. The only tx that held it is the refused trade itself
(no nonce is taken on a lane while its broadcast awaits its answer, a cancel waits for that
answer, and a resync keeps the next nonce past every unresolved one, those of a previous
run too), and its row is resolved before the nonce comes back. Here the lane also holds a
trade of a previous run and that trade's cancel, both unresolved on nonce 0.

The one way an unresolved tx of ours did sit on the next nonce: a trade re-opened by a reorg
(reorg.py) after a resync had set the next nonce back to it; it now holds it again."""

from __future__ import annotations

import asyncio

from eth_utils import to_checksum_address
from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, v2_pair_address

from services.submit.reorg import reopen_reorged
from tests.unit.submit.fake_chain import block_hash
from tests.unit.submit.gate_world import FACTORY_A, FACTORY_B, WETH, bundle, calldata
from tests.unit.submit.submit_world import World, world
from tests.unit.submit.test_cancel_overlap import passes
from tests.unit.submit.test_send_overlap import ELSEWHERE, trade, until

__all__ = ["world"]  # the fixture, imported for pytest

TOKEN = to_checksum_address("0x" + "0e" * 20)
THIRD = calldata(  # pools neither the default calldata nor ELSEWHERE touches
    [
        (v2_pair_address(FACTORY_A, WETH, TOKEN, UNISWAP_V2_INIT_CODE_HASH), WETH, TOKEN, 30),
        (v2_pair_address(FACTORY_B, TOKEN, WETH, UNISWAP_V2_INIT_CODE_HASH), TOKEN, WETH, 30),
    ]
)


def others_on(world: World, nonce: int, but: str) -> list[tuple[str, str]]:
    """(bundle, kind) of our unresolved txs on `nonce` other than bundle `but`'s."""
    return [
        (t.bundle_id, t.kind)
        for t in world.ledger.unresolved()
        if t.nonce == nonce and t.bundle_id != but
    ]


async def test_the_trade_gated_before_a_refusals_resync_takes_no_nonce_we_still_hold(
    world: World,
) -> None:
    first = await world.start()
    old = bundle(id="bundle:old", opportunity_id="old")  # default pools: claimed until settled
    await first.handle(old, "t", 1)
    await first.withdraw("old", "a later swap moves the pool")  # its cancel, on nonce 0
    assert [(t.kind, t.state, t.nonce) for t in world.ledger.txs_of(old.id)] == [
        ("trade", "sent", 0),
        ("cancel", "sent", 0),
    ]
    world.submitter = world.new_submitter()  # a restart: both still unresolved on nonce 0
    sub = await world.start()
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, {0})

    world.chain.hold, world.chain.refuse = asyncio.Event(), 1
    refused = bundle(id="bundle:refused", opportunity_id="refused", data=ELSEWHERE)
    later = bundle(id="bundle:later", opportunity_id="later", data=THIRD)
    first_send = asyncio.create_task(sub.handle(refused, "t", 1))
    await until(lambda: len(world.chain.sent) == 3)
    second = asyncio.create_task(sub.handle(later, "t", 1))
    await passes()
    assert world.ledger.txs_of(later.id) == []  # no nonce taken while the answer is unknown
    world.chain.count_hold = asyncio.Event()  # the refusal's resync is read, not answered
    world.chain.hold.set()
    await until(lambda: len(world.chain.sent) == 4)
    # the gap: the lane was answered, the resync has not applied the chain's count
    assert not world.chain.count_hold.is_set() and not first_send.done()
    assert [(t.kind, t.state, t.nonce) for t in world.ledger.txs_of(refused.id)] == [
        ("trade", "rejected", 1)
    ]
    taken = trade(world, later.id).nonce
    assert taken == 1  # the refused trade's, given back: no gap on the lane
    assert others_on(world, taken, later.id) == []
    assert others_on(world, 0, later.id) == [(old.id, "trade"), (old.id, "cancel")]
    world.chain.count_hold.set()
    await asyncio.gather(first_send, second)
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 0, 1, 1]
    assert [(t.nonce, t.state) for t in world.ledger.txs_of(later.id)] == [(1, "sent")]
    assert world.outcome(refused.id).status == "not_sent"
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (2, {0, 1})
    # every nonce of ours on the wire is held by one bundle only
    held: dict[int, set[str]] = {}
    for t in world.ledger.unresolved():
        held.setdefault(t.nonce, set()).add(t.bundle_id)
    assert held == {0: {old.id}, 1: {later.id}}


async def test_a_trade_reopened_by_a_reorg_keeps_its_nonce_from_the_next_trade(
    world: World,
) -> None:
    """A resync between a reorg and its detection reads a count without our reorged trade
    (no node holds it now) while its row is still settled: the next nonce falls to the
    trade's. Re-opened, the trade holds that nonce again, so the next trade goes past it."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    mined = trade(world, "bundle:o1")
    world.chain.mine(mined.hash, 1)
    await sub.fetch_head()
    assert await sub.track_once() == 1
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, set())
    block = int(world.chain.receipts.pop(mined.hash)["blockNumber"], 16)  # reorged out
    world.chain.mined_nonce = 0
    await sub.sync_nonces()  # nonce_reset, a refused send's or a dropped trade's resync
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (0, set())
    sub.blocks.saw(block, "0x" + "dd" * 32, streamed=True)  # the stream announces the reorg
    world.chain.head += 1
    await sub.fetch_head()
    await reopen_reorged(sub.reorgs, sub.ledger, sub.lane_of, sub.pool, sub.blocks, sub.head.number)
    assert [(t.bundle_id, t.nonce) for t in world.ledger.unresolved()] == [("bundle:o1", 0)]
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, {0})
    head = sub.head.number
    at = {"block_number": head, "block_hash": block_hash(head), "deadline_block": head + 2}
    await sub.handle(bundle(id="bundle:next", opportunity_id="next", data=THIRD, **at), "t", 1)
    assert [(t.nonce, t.state) for t in world.ledger.txs_of("bundle:next")] == [(1, "sent")]
    assert others_on(world, 1, "bundle:next") == []
