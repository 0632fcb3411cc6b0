"""A live block's search runs in slices with pending swaps handled in between
(services/detect/block_path.py), and finds exactly what the one-pass search finds: the same
block opportunities in the same order, the same backruns and withdrawals for the same pending
swaps, the same cycles left open and the same counts. Two detectors over the devnet-like pools
get the same block (Sync logs moving five pairs) and the same 60 pending swaps: one searches
the block in one pass and handles the swaps after it, the other pauses after every unit of
its search and handles the swaps while it is paused."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from mev_common.envelope import Envelope
from mev_common.messages import Block, Log, Opportunity, PendingTx, Withdrawal, decode

from bench.detect_profile import CHAIN_ID, _Bus, detector
from bench.swaps import pending_swaps
from services.detect.registry import SYNC_TOPIC
from services.detect.service import Detector


class _Keep(_Bus):
    """Every message published, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Opportunity | Withdrawal] = []

    async def publish(self, subject: str, message: Any, **_: Any) -> None:
        self.messages.append(message)


def _block(found: Detector, seed: int) -> Block:
    """Block 2: Sync logs moving five V2 pairs' reserves by up to 4 %."""
    rng = random.Random(seed)
    pools = sorted(found.registry.pools.values(), key=lambda p: p.address)
    logs = []
    for i, pool in enumerate(rng.sample(pools, 5)):
        r0 = int(pool.reserve0 * rng.uniform(0.96, 1.04))
        r1 = int(pool.reserve1 * rng.uniform(0.96, 1.04))
        logs.append(Log(address=pool.address, topics=[SYNC_TOPIC], data=f"0x{r0:064x}{r1:064x}",
                        log_index=i, tx_hash="0x" + f"{i + 1:064x}"))  # fmt: skip
    assert found.head is not None
    return Block(chain_id=CHAIN_ID, number=2, hash="0x" + "22" * 32, parent_hash=found.head.hash,
                 timestamp=found.head.timestamp + 1, base_fee_per_gas=10**9, logs=logs)  # fmt: skip


def _env(message: Any, key: str) -> Envelope[Any]:
    return Envelope(message, "t", key, key, time.time_ns())


def _run(seed: int, sliced: bool) -> tuple[Detector, _Keep, int]:
    """One detector's block and pending swaps; with `sliced`, how many swaps it handled
    while the block's search was paused."""
    found, deployment, _ = detector()
    bus = found.rt.bus = _Keep()  # type: ignore[assignment]
    found.block_slice_s = 0.0 if sliced else None  # 0: a pause after every unit of work
    block = _block(found, seed)
    swaps = [(h, decode(PendingTx, p)) for h, p in pending_swaps(deployment, 60, seed=seed)]

    async def main() -> int:
        searching = asyncio.create_task(found.on_block(_env(block, block.hash)))
        await asyncio.sleep(0)  # the block's state is applied, its search under way
        during = 0
        for tx_hash, tx in swaps:
            await found.on_pending(_env(tx, tx_hash))
            during += not searching.done()
            await asyncio.sleep(0)
        await searching
        return during

    return found, bus, asyncio.run(main())


def _split(bus: _Keep) -> tuple[list[Any], list[Any]]:
    """Block opportunities in order; everything else (backruns, withdrawals) in order."""
    block = [m for m in bus.messages if isinstance(m, Opportunity) and m.victim is None]
    rest = [m for m in bus.messages if not (isinstance(m, Opportunity) and m.victim is None)]
    return block, rest


def test_sliced_block_search_finds_what_the_one_pass_search_finds() -> None:
    for seed in (1, 2, 3):
        one, one_bus, _ = _run(seed, sliced=False)
        sliced, sliced_bus, during = _run(seed, sliced=True)
        assert during >= 10, during  # swaps were handled while the block's search paused
        one_block, one_rest = _split(one_bus)
        sliced_block, sliced_rest = _split(sliced_bus)
        assert one_block and sliced_block == one_block
        assert any(isinstance(m, Opportunity) for m in one_rest)
        assert sliced_rest == one_rest
        assert sliced.left_open == one.left_open
        assert sliced.stats == one.stats
