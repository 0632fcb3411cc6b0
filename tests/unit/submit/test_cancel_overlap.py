"""A cancel is never sent while its trade's broadcast awaits its answer (cancels.py): sent
meanwhile, it shares the trade's nonce on the wire, and a refused trade (the cancel itself
can make the node answer 'replacement underpriced') gave its nonce back to the next trade
while the cancel held it, the cancel's row left unresolved for ever (its trade settled, no
tracking pass looked at it again). Now the cancel waits for the answer: a refused trade has
nothing on the wire to cancel; an accepted one is cancelled then, on its nonce. The trade's
broadcast is held (FakeChain.hold) while detect withdraws it."""

from __future__ import annotations

import asyncio

from tests.unit.submit.gate_world import bundle
from tests.unit.submit.submit_world import World, world
from tests.unit.submit.test_send_overlap import ELSEWHERE, trade, until

__all__ = ["world"]  # the fixture, imported for pytest


async def passes(n: int = 50) -> None:
    """Let every task run as far as it can."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_trade_refused_after_its_withdrawal_gives_its_nonce_back_with_no_cancel(
    world: World,
) -> None:
    sub = await world.start()
    world.chain.hold, world.chain.refuse = asyncio.Event(), 1
    doomed = bundle(id="bundle:doomed", opportunity_id="doomed")
    later = bundle(id="bundle:later", opportunity_id="later", data=ELSEWHERE)
    first = asyncio.create_task(sub.handle(doomed, "t", 1))
    await until(lambda: len(world.chain.sent) == 1)
    withdrawal = asyncio.create_task(sub.withdraw("doomed", "a later swap moves the pool"))
    second = asyncio.create_task(sub.handle(later, "t", 1))
    await passes()
    # nothing signed on nonce 0 beside the trade while its answer is unknown
    assert [t.kind for t in world.ledger.txs_of(doomed.id)] == ["trade"]
    assert len(world.chain.sent) == 1
    world.chain.hold.set()
    await asyncio.gather(first, withdrawal, second)
    assert [(t.kind, t.state) for t in world.ledger.txs_of(doomed.id)] == [("trade", "rejected")]
    assert world.outcome(doomed.id).status == "not_sent"
    # the refused trade never pooled and no cancel went out: nonce 0 is the next trade's
    assert [(tx["nonce"], tx["value"]) for tx in world.chain.sent] == [(0, 0), (0, 0)]
    assert world.chain.sent[1]["hash"] == trade(world, later.id).hash
    assert [(t.bundle_id, t.nonce) for t in world.ledger.unresolved()] == [(later.id, 0)]
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, {0})
    assert list(world.chain.pool) == [trade(world, later.id).hash]


async def test_an_accepted_trade_is_cancelled_on_its_nonce_once_answered(world: World) -> None:
    sub = await world.start()
    world.chain.hold = asyncio.Event()
    doomed = bundle(id="bundle:doomed", opportunity_id="doomed")
    first = asyncio.create_task(sub.handle(doomed, "t", 1))
    await until(lambda: len(world.chain.sent) == 1)
    withdrawal = asyncio.create_task(sub.withdraw("doomed", "a later swap moves the pool"))
    await passes()
    assert [t.kind for t in world.ledger.txs_of(doomed.id)] == ["trade"]
    world.chain.hold.set()
    await asyncio.gather(first, withdrawal)
    [traded, cancel] = world.ledger.txs_of(doomed.id)
    assert [(t.kind, t.state, t.nonce) for t in (traded, cancel)] == [
        ("trade", "sent", 0),
        ("cancel", "sent", 0),
    ]
    assert world.chain.answered == [traded.hash, cancel.hash]  # the cancel after the answer
    assert cancel.max_priority_fee_per_gas > traded.max_priority_fee_per_gas
    world.chain.mine(cancel.hash, 1, 21_000)
    await sub.track_once()
    outcome = world.outcome(doomed.id)
    assert (outcome.status, outcome.tx_hash) == ("replaced", cancel.hash)
    states = [(t.kind, t.state) for t in world.ledger.txs_of(doomed.id)]
    assert states == [("trade", "replaced"), ("cancel", "mined")]
    assert world.ledger.unresolved() == []
    assert (sub.nonces.next_nonce, sub.nonces.in_flight) == (1, set())  # nonce 0 used, once
    await sub.handle(bundle(id="bundle:next", opportunity_id="next", data=ELSEWHERE), "t", 1)
    assert world.chain.sent[-1]["nonce"] == 1
