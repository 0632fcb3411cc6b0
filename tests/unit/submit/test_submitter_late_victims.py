"""A backrun whose victim was mined without it, through submit's tracking pass
(late_victims.py), and what the pass reads from the ledger: the bundle of each trade in flight
once (trade_bundles.py), not once per pass for late_victims and again for late_blocks. In-memory
chain, real SQLite ledger, in the world of submit_world.py."""

from __future__ import annotations

from services.submit.submitter import Submitter
from tests.unit.submit.gate_world import GWEI, bundle
from tests.unit.submit.submit_world import World, world

__all__ = ["world"]  # the fixture, imported for pytest
VICTIMS = ["0x" + "a1" * 32, "0x" + "a2" * 32]


def count_bundle_reads(world: World) -> list[str]:
    """Every statement that reads one bundle row, as SQLite runs it, from now on."""
    reads: list[str] = []
    world.ledger._db.set_trace_callback(
        lambda sql: reads.append(sql) if "FROM bundles WHERE id" in sql else None
    )
    return reads


def backrun(n: int, **fields: object) -> dict[str, object]:
    return {"id": f"bundle:o{n}", "opportunity_id": f"o{n}", "victim_tx_hash": VICTIMS[n - 1],
            "victim_priority_fee": 2 * GWEI, **fields}  # fmt: skip


async def test_a_pass_reads_only_the_bundles_of_trades_new_since_the_last(world: World) -> None:
    """Two backruns (the second stacked on the first), sent between passes: each bundle row is
    read once in four passes; then the first's victim is mined without it and it is withdrawn
    as before (its cancel takes its nonce; the one stacked on it is cancelled too)."""
    sub: Submitter = await world.start()
    await sub.handle(bundle(**backrun(1)), "t", 1)
    reads = count_bundle_reads(world)
    await sub.track_once()
    await sub.track_once()
    assert len(reads) == 1
    await sub.handle(bundle(**backrun(2, after_bundles=["bundle:o1"])), "t", 1)
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1]
    del reads[:]
    await sub.track_once()
    await sub.track_once()
    assert len(reads) == 1  # the new trade's bundle only

    world.chain.head += 1  # the first victim is mined; our trade (nonce 0) is not
    world.chain.receipts[VICTIMS[0]] = {"status": "0x1", "blockNumber": hex(world.chain.head)}
    await sub.fetch_head()
    await sub.track_once()
    assert sub.withdrawn["bundle:o1"] == (
        f"victim {VICTIMS[0]} mined in block {world.chain.head} without it"
    )
    assert [(tx["nonce"], tx["gas"]) for tx in world.chain.sent][2:] == [(0, 21_000), (1, 21_000)]
    del reads[:]  # the withdrawal read what it cancels; a pass while the cancels wait reads none
    await sub.track_once()
    assert reads == []
