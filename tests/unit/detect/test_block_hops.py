"""A live block trigger's time is split in the hop histogram (seen -> detect's handler, then
the block's state and search), so an operator sees where a block's detect latency goes; a
replayed block (after a load) is not timed."""

from __future__ import annotations

import asyncio
import time

from mev_common import metrics
from mev_common.envelope import Envelope
from mev_common.messages import Block

from bench.detect_profile import CHAIN_ID, detector


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
