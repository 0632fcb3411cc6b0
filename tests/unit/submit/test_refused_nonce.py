"""After a refused send the lane is free before the nonce resync answers (Submitter._after_send:
the refusal booked, its nonce given back, the lane answered, then `sync_nonces` awaits the
chain's count). A trade gated in that gap takes the given-back nonce: this pins that no
unresolved tx of ours holds it then. The only tx that held it is the refused trade itself
(no nonce is taken on a lane while its broadcast awaits its answer, a cancel waits for that
answer, and a resync keeps the next nonce past every unresolved one, those of a previous
run too), and its row is resolved before the nonce comes back. Here the lane also holds a
trade of a previous run and that trade's cancel, both unresolved on nonce 0."""

from __future__ import annotations

import asyncio

from eth_utils import to_checksum_address
from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, v2_pair_address

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
