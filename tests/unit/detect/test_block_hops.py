"""A live block trigger's time is split in the hop histogram (seen -> detect's handler, then
the block's state and search), so an operator sees where a block's detect latency goes; a
replayed block (after a load) is not timed. A pending swap's arrival (seen -> detect's handler)
is timed too."""

from __future__ import annotations

import asyncio
import time

from mev_common import metrics
from mev_common.envelope import Envelope
from mev_common.messages import Block, PendingTx, decode

from bench.detect_profile import CHAIN_ID, detector
from bench.swaps import pending_swaps


def _count(hop: str) -> float:
    """Observations of `hop` so far (the histogram's _count sample)."""
    return next(
        s.value
        for family in metrics.HOP_LATENCY.collect()
        for s in family.samples
        if s.name.endswith("_count") and s.labels.get("hop") == hop
    )


def test_a_live_block_observes_its_two_hops_and_a_replayed_one_none() -> None:
    found, _, _ = detector()
    hops = ("detect_block_arrive", "detect_block_search")
    before = {h: _count(h) for h in hops}
    seen = time.time_ns() - 5_000_000  # ingest saw the head 5 ms ago

    def env(n: int) -> Envelope[Block]:
        block = Block(chain_id=CHAIN_ID, number=n, hash="0x" + f"{n:064x}",
                      parent_hash="0x" + f"{n - 1:064x}", timestamp=int(time.time()) + n,
                      base_fee_per_gas=10**9)  # fmt: skip
        return Envelope(block, "blocks", block.hash, block.hash, seen)

    asyncio.run(found.on_block(env(2)))
    assert {h: _count(h) - before[h] for h in hops} == {h: 1 for h in hops}
    asyncio.run(found.on_block(env(3), live=False))
    assert {h: _count(h) - before[h] for h in hops} == {h: 1 for h in hops}


def test_a_pending_swap_observes_its_arrival_once() -> None:
    found, deployment, _ = detector()
    before = _count("detect_pending_arrive")
    tx_hash, payload = pending_swaps(deployment, 1, seed=5)[0]
    seen = time.time_ns() - 5_000_000  # ingest saw it 5 ms ago
    env = Envelope(decode(PendingTx, payload), "mempool", tx_hash, tx_hash, seen)
    asyncio.run(found.on_pending(env))
    assert _count("detect_pending_arrive") - before == 1
