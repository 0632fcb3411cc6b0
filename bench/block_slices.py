"""How long a live block's search holds detect's event loop, and how long a pending swap that
arrives meanwhile waits for its handler: in process (the real Detector over the devnet-like
pools, no NATS), so it isolates the block path from ingest, the bus and the machine's load.

Each block moves the reserves of `--changed` V2 pairs (all 14: ~1,900 cycles searched, the
longest block search the devnet makes); while it is searched, `--pending` swaps arrive at
random moments in the block's first `--spread-ms`. Prints, with n beside each figure:
- the block search's wall time (its pauses included) and CPU time, its pauses;
- the longest stretch (CPU) it held the loop without a pause, per block;
- each pending swap's wait from its arrival to its handler's start (wall), and how many were
  handled while the block was still being searched.

    .venv/bin/python -m bench.block_slices --blocks 60
Run from another checkout's directory with its path first (PYTHONPATH=<checkout>:<checkout>/
libs/common) to compare commits: nothing here depends on this branch's code.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
from typing import Any

from mev_common.envelope import Envelope
from mev_common.messages import Block, Log, PendingTx, decode

import services.detect.slicing as slicing
from bench.detect_profile import CHAIN_ID, detector
from bench.swaps import pending_swaps
from services.detect.registry import SYNC_TOPIC
from services.detect.service import Detector, settle_heap


def moved(found: Detector, seed: int, changed: int) -> Block:
    """The next block: Sync logs moving `changed` V2 pairs' reserves by up to 4 %."""
    rng = random.Random(seed)
    pools = sorted(found.registry.pools.values(), key=lambda p: p.address)
    logs = []
    for i, pool in enumerate(rng.sample(pools, min(changed, len(pools)))):
        r0 = int(pool.reserve0 * rng.uniform(0.96, 1.04))
        r1 = int(pool.reserve1 * rng.uniform(0.96, 1.04))
        logs.append(Log(address=pool.address, topics=[SYNC_TOPIC], data=f"0x{r0:064x}{r1:064x}",
                        log_index=i, tx_hash="0x" + f"{seed:032x}{i + 1:032x}"))  # fmt: skip
    head = found.head
    assert head is not None
    number = head.number + 1
    return Block(chain_id=CHAIN_ID, number=number, hash="0x" + f"{number:064x}",
                 parent_hash=head.hash, timestamp=head.timestamp + 1,
                 base_fee_per_gas=10**9, logs=logs)  # fmt: skip


def quantiles(values: list[float]) -> str:
    """p50 / p95 / max (n), nearest rank, in ms."""
    if not values:
        return "n=0"
    s = sorted(values)
    at = lambda q: s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]  # noqa: E731
    return f"{at(0.5) * 1e3:.3f} / {at(0.95) * 1e3:.3f} / {s[-1] * 1e3:.3f} ms (n={len(s)})"


async def run(blocks: int, changed: int, per_block: int, spread_s: float) -> dict[str, Any]:
    found, deployment, _ = detector()
    swaps = [(h, decode(PendingTx, p)) for h, p in pending_swaps(deployment, 4000, seed=5)]
    settle_heap()  # as detect does after a load: the loaded state out of the collector's way
    marks: list[float] = []  # CPU time at each pause's start and end
    original = slicing.yield_to_others

    async def pause(max_rounds: int = slicing.MAX_ROUNDS) -> int:
        marks.append(time.process_time())
        rounds = await original(max_rounds)
        marks.append(time.process_time())
        return rounds

    slicing.yield_to_others = pause  # type: ignore[assignment]
    assert slicing.run_sliced.__kwdefaults__ is not None
    slicing.run_sliced.__kwdefaults__["pause"] = pause
    collections: list[float] = []  # full (generation 2) collections, wall

    def collected(phase: str, info: dict[str, int], began: list[float] = [0.0]) -> None:  # noqa: B006
        if info["generation"] == 2:
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                collections.append(time.perf_counter() - began[0])

    gc.callbacks.append(collected)
    loop, rng = asyncio.get_running_loop(), random.Random(7)
    out: dict[str, list[float]] = {"wall": [], "cpu": [], "pauses": [], "hold": [], "wait": []}
    during, k = 0, 0
    for n in range(blocks):
        block = moved(found, 1000 + n, changed)
        waits: list[asyncio.Task[float]] = []

        async def handle(tx_hash: str, tx: PendingTx, due: float) -> float:
            started = time.perf_counter()
            await found.on_pending(Envelope(tx, "mempool", tx_hash, tx_hash, time.time_ns()))
            return started - due

        def arrive(
            tx_hash: str, tx: PendingTx, due: float, waits: list[asyncio.Task[float]]
        ) -> None:
            waits.append(loop.create_task(handle(tx_hash, tx, due)))

        marks.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(per_block):
            tx_hash, tx = swaps[k % len(swaps)]
            k += 1
            delay = rng.uniform(0.0, spread_s)
            due = time.perf_counter() + delay
            loop.call_at(loop.time() + delay, arrive, tx_hash, tx, due, waits)
        await found.on_block(Envelope(block, "blocks", block.hash, block.hash, time.time_ns()))
        out["wall"].append(time.perf_counter() - wall)
        ended = time.process_time()
        out["cpu"].append(ended - cpu)
        out["pauses"].append(len(marks) // 2)
        edges = [cpu, *marks, ended]
        out["hold"].append(max(edges[i + 1] - edges[i] for i in range(0, len(edges) - 1, 2)))
        during += len(waits)  # arrived (so handled, or about to be) before the block was done
        await asyncio.sleep(spread_s)  # the rest arrive and are handled
        out["wait"].extend([await w for w in waits])
    gc.callbacks.remove(collected)
    return {**out, "gc": collections, "during": during, "pending": per_block * blocks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--changed", type=int, default=14)
    parser.add_argument("--pending", type=int, default=5, help="swaps arriving per block")
    parser.add_argument("--spread-ms", type=float, default=20.0)
    args = parser.parse_args()
    got = asyncio.run(run(args.blocks, args.changed, args.pending, args.spread_ms / 1e3))
    print(f"block search wall p50/p95/max: {quantiles(got['wall'])}")
    print(f"block search CPU p50/p95/max: {quantiles(got['cpu'])}")
    p = sorted(got["pauses"])
    print(f"pauses a block p50/p95/max: {p[len(p) // 2]} / {p[int(0.95 * len(p))]} / {p[-1]}")
    print(f"longest hold (CPU) a block p50/p95/max: {quantiles(got['hold'])}")
    print(f"pending arrival -> handler wait p50/p95/max: {quantiles(got['wait'])}")
    print(f"pending handled while a block was searched: {got['during']} of {got['pending']}")
    print(f"full collections: {quantiles(got['gc'])}")


if __name__ == "__main__":
    main()
