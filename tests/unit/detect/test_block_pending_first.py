"""A live block's search gives way to the pending swaps already queued once the block's logs
are applied (services/detect/block_path.py): such a swap is handled before the block's search
runs, on the block's whole state, even when the search would never pause on its own (a slice
longer than the search); and slicing the block path changes none of what a block publishes
(the same opportunities to the wei, block after block, as the one-pass search and as main at
a39a47f, whose figures are below)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mev_common.envelope import Envelope
from mev_common.messages import Block, Opportunity, PendingTx, decode

import services.detect.block_path as block_path
from bench.block_slices import moved
from bench.detect_profile import detector
from bench.swaps import pending_swaps
from services.detect.service import Detector

# Each block's opportunities on main a39a47f (one pass and sliced alike) for `_blocks`' six
# blocks: (count, their expected profits summed, in wei); the last block's sum 80,305 wei more
# since V2 sizing through two 6-decimal tokens is exact (amm/middle_hits.py, 2026-12-02).
MAIN = [
    (5, 9_585_160_050_606_483_167),
    (5, 13_042_888_893_889_303_478),
    (5, 11_838_232_594_747_906_972),
    (5, 27_050_485_279_451_903_624),
    (5, 19_758_512_719_316_049_527),
    (5, 25_095_488_745_453_877_012),
]


def _env(message: Any, key: str) -> Envelope[Any]:
    return Envelope(message, "t", key, key, time.time_ns())


class _Events:
    """What the detector did, in order: each pending swap's handler start (with the block
    number its head and registry held then) and each publish, by trigger."""

    def __init__(self, found: Detector) -> None:
        self.log: list[tuple[str, Any]] = []
        self.published: list[Opportunity] = []
        handle, publish = found.on_pending, found.publish
        found.recheck = False  # no RPC here to check the book's nonces against

        async def on_pending(env: Envelope[PendingTx]) -> None:
            assert found.head is not None
            self.log.append(("pending", (found.head.number, found.registry.block_number)))
            await handle(env)

        async def on_publish(opportunities: list[Opportunity], env: Any, trigger: Any) -> None:
            self.log.append((f"publish {trigger}", len(opportunities)))
            self.published.extend(opportunities)
            await publish(opportunities, env, trigger)

        found.on_pending = on_pending  # type: ignore[method-assign]
        found.publish = on_publish  # type: ignore[method-assign]


def test_a_pending_swap_arriving_while_a_block_is_applied_goes_before_its_search() -> None:
    found, deployment, _ = detector()
    events = _Events(found)
    found.block_slice_s = 3600.0  # the search itself never pauses: only the block path does
    block = moved(found, 1, 14)  # every pair moved: ~1,900 cycles searched
    tx_hash, payload = pending_swaps(deployment, 1, seed=4)[0]
    searched: list[int] = []
    steps, apply = block_path.search_steps, found.registry.apply_block

    def counted(*args: Any, **kwargs: Any) -> Any:  # the block search's units of work
        searched.append(0)
        run = steps(*args, **kwargs)
        while True:
            try:
                next(run)
            except StopIteration as done:
                return done.value
            searched[-1] += 1
            yield

    def applying(b: Block) -> set[str]:  # the swap reaches detect while the block is applied
        asyncio.get_running_loop().create_task(
            found.on_pending(_env(decode(PendingTx, payload), tx_hash))
        )
        return apply(b)

    found.registry.apply_block = applying  # type: ignore[method-assign]
    block_path.search_steps = counted  # type: ignore[assignment]
    try:

        async def main() -> None:
            await found.on_block(_env(block, block.hash))
            await asyncio.sleep(0.01)  # a pending handler still running finishes

        asyncio.run(main())
    finally:
        block_path.search_steps = steps  # type: ignore[assignment]
    kinds = [kind for kind, _ in events.log]
    assert kinds == ["pending", "publish pending", "publish block"], events.log
    # handled on the block's state, whole: its head and every pool at the block
    assert events.log[0][1] == (block.number, block.number)
    assert events.log[1][1] >= 1 and events.log[2][1] == 5  # a backrun, then the block's five
    assert len(searched) == 1 and searched[0] > 1_000  # one long block search, after the swap


def _blocks(sliced: bool, with_pending: bool) -> tuple[Detector, list[list[Opportunity]]]:
    """Six blocks in a row, each moving every pair (the last block's finds searched again);
    `with_pending`: 3 pending swaps arrive while each is searched."""
    found, deployment, _ = detector()
    events = _Events(found)
    found.block_slice_s = 0.0 if sliced else None  # 0: a pause after every unit of work
    swaps = [(h, decode(PendingTx, p)) for h, p in pending_swaps(deployment, 18, seed=9)]
    out: list[list[Opportunity]] = []

    async def main() -> None:
        for n in range(6):
            block = moved(found, 100 + n, 14)
            searching = asyncio.create_task(found.on_block(_env(block, block.hash)))
            for tx_hash, tx in swaps[3 * n : 3 * n + 3] if with_pending else []:
                await asyncio.sleep(0)
                await found.on_pending(_env(tx, tx_hash))
            await searching
            out.append([o for o in events.published if o.victim is None])
            events.published.clear()

    asyncio.run(main())
    return found, out


def test_a_sliced_block_path_publishes_what_the_one_pass_one_and_main_publish() -> None:
    one, one_pass = _blocks(sliced=False, with_pending=False)
    sliced, in_slices = _blocks(sliced=True, with_pending=False)
    assert in_slices == one_pass  # every field: ids, hops, amounts, profits to the wei
    assert sliced.left_open == one.left_open and sliced.stats == one.stats
    assert [(len(b), sum(o.expected_profit for o in b)) for b in in_slices] == MAIN
    _, with_pending = _blocks(sliced=True, with_pending=True)
    # pending swaps handled in the pauses change no block trade's search (none here crowds
    # one: booking checks the book after the search, as before)
    assert [(len(b), sum(o.expected_profit for o in b)) for b in with_pending] == MAIN
