"""Detect's pending view after a gap in its feed (NATS back, a redelivery, a reload): swaps
still pending stay booked, and trades wait a bounded time for a block mined after the gap."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mev_common.envelope import Envelope
from mev_common.messages import Block, Opportunity, PendingTx, decode

from bench.detect_profile import CHAIN_ID, _Bus, detector
from bench.swaps import pending_swaps
from services.detect.service import Detector


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


def _next_block(det: Detector, stamped: int, skip: int = 0) -> Block:
    assert det.head is not None
    number = det.head.number + 1 + skip
    parent = det.head.hash if not skip else "0x" + f"{number - 1:064x}"
    return Block(chain_id=CHAIN_ID, number=number, hash="0x" + f"{number:064x}",
                 parent_hash=parent, timestamp=stamped, base_fee_per_gas=10**9)  # fmt: skip


def _swaps(deployment: dict[str, Any], n: int, seed: int) -> list[tuple[str, PendingTx]]:
    return [(h, decode(PendingTx, p)) for h, p in pending_swaps(deployment, n, seed=seed)]


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
