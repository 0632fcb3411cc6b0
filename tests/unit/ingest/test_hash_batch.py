"""HashBatcher: a hash-only feed's burst is fetched in two round trips (the first hash alone,
at once; the rest together), every hash exactly once with its own seen stamp."""

from __future__ import annotations

import asyncio

from services.ingest.hash_batch import HashBatcher


async def test_a_burst_is_fetched_first_alone_then_in_one_batch() -> None:
    batches: list[list[tuple[str, int]]] = []
    release = asyncio.Event()

    async def fetch(batch: list[tuple[str, int]]) -> None:
        batches.append(batch)
        await release.wait()  # a round trip in flight while the rest of the burst arrives

    batcher = HashBatcher(fetch)
    for i in range(5):
        batcher.add(f"0x{i}", 100 + i)
        await asyncio.sleep(0)
    assert batches == [[("0x0", 100)]]  # the first did not wait for company
    release.set()
    await batcher.wait()
    assert batches == [[("0x0", 100)], [("0x1", 101), ("0x2", 102), ("0x3", 103), ("0x4", 104)]]

    batcher.add("0x5", 105)  # a lone hash later: fetched alone, at once
    await batcher.wait()
    assert batches[-1] == [("0x5", 105)] and len(batches) == 3


async def test_a_failed_batch_does_not_stop_the_next() -> None:
    batches: list[list[tuple[str, int]]] = []
    gate = asyncio.Event()

    async def fetch(batch: list[tuple[str, int]]) -> None:
        batches.append(batch)
        if len(batches) == 1:
            await gate.wait()
            raise ValueError("garbage reply")

    batcher = HashBatcher(fetch)
    batcher.add("0xa", 1)
    await asyncio.sleep(0)
    batcher.add("0xb", 2)
    gate.set()
    await batcher.wait()
    assert batches == [[("0xa", 1)], [("0xb", 2)]]
