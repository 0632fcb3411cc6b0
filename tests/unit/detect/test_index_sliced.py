"""A live block that adds a pool rebuilds detect's indexes in slices (services/detect/
index_steps.py), with pending swaps served between them, and ends with exactly the indexes the
one-pass rebuild makes. Before, the rebuild ran in one ~33 ms piece before the block's first
pause, so a pending swap queued behind it always saw the rebuilt index."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eth_utils import to_checksum_address
from mev_common.amm.v2 import pair_key
from mev_common.envelope import Envelope
from mev_common.messages import Block, Log, PendingTx, decode

from bench.detect_profile import CHAIN_ID, detector
from bench.swaps import pending_swaps
from services.detect import index_steps
from services.detect.registry import PAIR_CREATED_TOPIC, SYNC_TOPIC
from services.detect.service import Detector
from services.detect.slicing import finish, run_sliced

NEW_PAIR = to_checksum_address("0x" + "ab" * 20)


def _env(message: Any, key: str) -> Envelope[Any]:
    return Envelope(message, "t", key, key, time.time_ns())


def _word(address: str) -> str:
    return "0x" + address[2:].lower().rjust(64, "0")


def _new_pool_block(found: Detector, deployment: dict[str, Any]) -> Block:
    """Block 2: DEX A's factory creates a DAI/WBTC pair (none on the devnet) and funds it."""
    tokens = deployment["tokens"]
    t0, t1 = pair_key(tokens["DAI"]["address"], tokens["WBTC"]["address"])
    d0, d1 = (
        (10**6 * 10**18, 10 * 10**8) if t0 == tokens["DAI"]["address"] else (10 * 10**8, 10**24)
    )
    created = Log(
        address=deployment["dexes"][0]["factory"],
        topics=[PAIR_CREATED_TOPIC, _word(t0), _word(t1)],
        data=_word(NEW_PAIR) + f"{1:064x}",
        log_index=0,
        tx_hash="0x" + "01" * 32,
    )
    sync = Log(address=NEW_PAIR, topics=[SYNC_TOPIC], data=f"0x{d0:064x}{d1:064x}", log_index=1,
               tx_hash="0x" + "01" * 32)  # fmt: skip
    assert found.head is not None
    return Block(chain_id=CHAIN_ID, number=2, hash="0x" + "22" * 32, parent_hash=found.head.hash,
                 timestamp=found.head.timestamp + 1, base_fee_per_gas=10**9,
                 logs=[created, sync])  # fmt: skip


def _same(a: index_steps.Indexes, b: index_steps.Indexes) -> None:
    for x, y in ((a.index, b.index), (a.backrun_index, b.backrun_index)):
        assert x.cycles == y.cycles
        assert list(x.pools()) == list(y.pools())
        assert all(x.of_pool(p) == y.of_pool(p) for p in x.pools())
    assert a.pair_index == b.pair_index


def test_the_sliced_build_equals_the_one_pass_build() -> None:
    found, _, _ = detector()
    pauses = 0

    async def pause() -> None:
        nonlocal pauses
        pauses += 1
        await asyncio.sleep(0)

    weth = found.contracts.weth
    one = finish(index_steps.build(found.registry, weth))
    sliced = asyncio.run(run_sliced(index_steps.build(found.registry, weth), 0.0, pause=pause))
    assert pauses > 50  # ~3,300 cycles: a pause every STEP_CYCLES of them and more
    _same(sliced, one)
    assert len(one.index.cycles) == 3296
    assert one.index.cycles == found.index.cycles  # what the detector holds (one pass at load)


def _run(sliced: bool) -> tuple[Detector, list[bool]]:
    """A block adding a pool, and pending swaps queued behind it: for each swap, whether it
    was handled while the indexes were still the ones from before the block."""
    found, deployment, _ = detector()
    found.block_slice_s = 0.0 if sliced else None  # 0: a pause after every unit of work
    old = found.index
    block = _new_pool_block(found, deployment)
    swaps = [(h, decode(PendingTx, p)) for h, p in pending_swaps(deployment, 20, seed=3)]
    before: list[bool] = []

    async def main() -> None:
        searching = asyncio.create_task(found.on_block(_env(block, block.hash)))
        await asyncio.sleep(0)  # the block applied, its rebuild under way
        for tx_hash, tx in swaps:
            await found.on_pending(_env(tx, tx_hash))
            before.append(found.index is old)
            await asyncio.sleep(0)
        await searching

    asyncio.run(main())
    return found, before


def test_pending_swaps_are_served_between_the_rebuilds_slices_and_the_indexes_are_the_same() -> (
    None
):
    one, before_one = _run(sliced=False)
    sliced, before_sliced = _run(sliced=True)
    assert not any(before_one)  # one pass: every swap waited for the rebuild
    assert sum(before_sliced) >= 5, before_sliced  # served while the rebuild was paused
    assert NEW_PAIR in sliced.registry.pools and sliced.index.of_pool(NEW_PAIR)
    built = index_steps.Indexes(sliced.index, sliced.backrun_index, sliced.pair_index)
    _same(built, index_steps.Indexes(one.index, one.backrun_index, one.pair_index))
    assert len(one.index.cycles) > 3296  # the new pair's cycles
    assert sliced.left_open == one.left_open  # the block's search ran on the rebuilt index


def test_a_block_that_removed_a_pool_rebuilds_in_one_pass(monkeypatch: Any) -> None:
    found, _, _ = detector()
    assert index_steps.still_held(found)
    gone = next(iter(found.registry.pools))
    del found.registry.pools[gone]  # as a reorg undoing its PairCreated does
    assert not index_steps.still_held(found)  # a swap served in a pause would miss it
    sliced: list[float] = []

    async def run(steps: Any, slice_s: float) -> Any:
        sliced.append(slice_s)
        return await run_sliced(steps, slice_s)

    monkeypatch.setattr(index_steps, "run_sliced", run)
    asyncio.run(index_steps.rebuild(found, 0.0))
    assert sliced == []
    assert all(gone not in c.pools for c in found.index.cycles)
    assert index_steps.still_held(found)
    asyncio.run(index_steps.rebuild(found, 0.0))
    assert sliced == [0.0]
