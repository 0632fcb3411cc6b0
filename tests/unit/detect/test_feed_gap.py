"""Trades wait for a whole pending view (services/detect/feed_gap.py): after a gap in the mempool
feed (NATS back, a redelivery, a late tx, a swap skipped while the pools reloaded, a start),
detect publishes no backrun and no block trade until it has applied a block mined after the
gap; then it trades again. The chaos test's NATS restart sent two backruns proven without a
higher-tipping swap that reached detect late (both reverted in the executor)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mev_common.envelope import Envelope
from mev_common.messages import Block, Opportunity, PendingTx, decode

from bench.detect_profile import CHAIN_ID, _Bus, detector
from bench.swaps import pending_swaps
from services.detect.feed_gap import CLOCK_MARGIN_S, FeedGap
from services.detect.service import Detector


def test_a_gap_holds_until_a_block_stamped_after_it() -> None:
    feed = FeedGap(late_s=2.0)
    assert feed.whole and not feed.on_block(10**9)
    assert feed.opened(100.5, "nats reconnected")  # newly unsure
    assert not feed.whole and feed.reason == "nats reconnected"
    assert not feed.on_block(100)  # mined before the gap
    assert not feed.on_block(int(100.5 + CLOCK_MARGIN_S))  # a second's stamp may round up
    assert not feed.opened(103.0, "pending tx late")  # still unsure: a later event moves it
    assert not feed.on_block(103)
    assert feed.on_block(105) and feed.whole and feed.reason == ""
    assert not feed.on_block(106)  # already whole


def test_a_redelivered_or_late_pending_tx_opens_a_gap_a_live_one_does_not() -> None:
    feed = FeedGap(late_s=2.0)
    assert not feed.on_pending(100.0, 99.9, 1) and feed.whole
    assert not feed.on_pending(100.0, 98.0, 1) and feed.whole  # late by exactly late_s
    assert feed.on_pending(100.0, 97.9, 1) and feed.reason == "pending tx late"
    assert feed.since == 100.0
    feed = FeedGap(late_s=2.0)
    assert feed.on_pending(100.0, 100.0, 2) and feed.reason == "pending tx redelivered"


class _Keep(_Bus):
    """Every opportunity published, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.opportunities: list[Opportunity] = []

    async def publish(self, subject: str, message: Any, **_: Any) -> None:
        if isinstance(message, Opportunity):
            self.opportunities.append(message)


def _env(message: Any, key: str, deliveries: int = 1) -> Envelope[Any]:
    return Envelope(message, "t", key, key, time.time_ns(), deliveries)


def _next_block(det: Detector, stamped: int) -> Block:
    assert det.head is not None
    number = det.head.number + 1
    return Block(chain_id=CHAIN_ID, number=number, hash="0x" + f"{number:064x}",
                 parent_hash=det.head.hash, timestamp=stamped, base_fee_per_gas=10**9)  # fmt: skip


def _swaps(deployment: dict[str, Any], n: int, seed: int) -> list[tuple[str, PendingTx]]:
    return [(h, decode(PendingTx, p)) for h, p in pending_swaps(deployment, n, seed=seed)]


def test_detect_holds_backruns_after_a_redelivery_until_a_later_block() -> None:
    """Two detectors, the same 40 swaps: the first with a whole feed publishes backruns for
    them; the second was handed its first swap a second time (a redelivery), so it publishes
    none of the first 20 (counted as held) until a block stamped after that redelivery, then
    backruns for the other 20 again."""
    whole, deployment, _ = detector()
    gapped, _, _ = detector()
    for det in (whole, gapped):
        det.recheck = False  # the book's nonce check after a load needs an RPC
    buses = [_Keep(), _Keep()]
    whole.rt.bus, gapped.rt.bus = buses  # type: ignore[assignment]
    swaps = _swaps(deployment, 40, seed=8)

    async def main() -> None:
        for k, (tx_hash, tx) in enumerate(swaps):
            if k == 20:  # the same block reaches both: mined after the redelivery
                stamp = int(gapped.feed.since or 0) + 2
                for det in (whole, gapped):
                    block = _next_block(det, stamp)
                    await det.on_block(_env(block, block.hash))
            await whole.on_pending(_env(tx, tx_hash))
            await gapped.on_pending(_env(tx, tx_hash, deliveries=2 if k == 0 else 1))

    asyncio.run(main())
    first = {h for h, _ in swaps[:20]}
    before = [o for o in buses[0].opportunities if o.trigger in first]
    after = [o for o in buses[0].opportunities if o.trigger not in first]
    assert len(before) >= 5 and len(after) >= 5  # real backruns on both sides of the block
    assert gapped.feed.held >= 5
    assert not [o for o in buses[1].opportunities if o.trigger in first]
    assert len(buses[1].opportunities) >= 5 and gapped.feed.whole


def test_a_swap_skipped_while_the_pools_reload_holds_trades() -> None:
    """A pending swap acked while detect was not loaded never enters the book: backruns wait
    for a block mined after it."""
    det, deployment, _ = detector()
    bus = det.rt.bus = _Keep()  # type: ignore[assignment]
    swaps = _swaps(deployment, 20, seed=8)
    det.recheck = False

    async def main() -> None:
        det.loaded = False
        await det.on_pending(_env(swaps[0][1], swaps[0][0]))
        det.loaded = True
        for tx_hash, tx in swaps[1:]:
            await det.on_pending(_env(tx, tx_hash))

    asyncio.run(main())
    assert det.feed.reason == "pending swap skipped (pools loading)"
    assert bus.opportunities == [] and det.feed.held >= 5


def test_a_swap_seen_at_a_lagging_head_stays_booked_while_the_blocks_catch_up() -> None:
    """Detect's head is 5 s (blocks) behind the chain's clock when a swap arrives (the block
    stream catching up after NATS came back): the four blocks of the backlog do not age it out
    (booked at the stale head, it left the book at the fourth while still pending)."""
    det, deployment, _ = detector()
    det.rt.bus = _Keep()  # type: ignore[assignment]
    det.recheck = False
    assert det.head is not None
    stale = int(time.time()) - 5
    det.head = det.head.model_copy(update={"timestamp": stale})
    tx_hash, tx = _swaps(deployment, 1, seed=8)[0]

    async def main() -> None:
        await det.on_pending(_env(tx, tx_hash))
        for k in range(1, 5):  # mined before the swap arrived
            block = _next_block(det, stale + k)
            await det.on_block(_env(block, block.hash))

    asyncio.run(main())
    assert det.head.number == 5
    assert tx_hash in det.pending.entries
