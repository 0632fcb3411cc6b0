"""Detect's longest hold of its event loop on a real reload and on a live block that adds a
pool, the old way and the new alternately in one process over one devnet.

Why: a block adding a pool rebuilt detect's indexes in one ~33 ms piece, and each reload's
settle_heap walked the whole heap (86-150+ ms), while pending swaps waited behind them
(a 363 ms `detect_block_search` was seen in a bench run). Now the rebuild runs in slices
(services/detect/index_steps.py) and a reload's settle collects only what came since the last
freeze (mev_common.gc_watch). A reload's own pieces (rebuild, V3 screen layout: ~0.2 s with
detect unloaded, pending swaps skipped meanwhile) are in its largest hold too, so its
settle_heap, run once detect is loaded again, is timed apart. The hold is the longest gap
between wake-ups of a 0.5 ms timer task beside the work (what a pending swap arriving then
would wait, to 0.5 ms).

The Detector is the service's class in process: a real RpcPool on the devnet's anvil and its
deployment; a reload is `Detector.load()` (the gap and deep-reorg path). The block is detect's
live path with a PairCreated log of a pair that is not on chain (the chain only gives the log).

    python -m bench.detect_hold_probe [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from eth_utils import to_checksum_address
from mev_common.amm.v2 import pair_key
from mev_common.chain.contracts import read_deployment
from mev_common.chain.rpc_pool import RpcPool
from mev_common.envelope import Envelope
from mev_common.gc_watch import settle_heap
from mev_common.messages import Block, Log
from mev_common.settings import RpcEndpoint, load_settings

from bench.detect_profile import _Bus, _Runtime
from bench.stack import CHAIN_ID, devnet_stack
from services.detect import index_steps, service
from services.detect.registry import PAIR_CREATED_TOPIC
from services.detect.service import Detector

TICK_S = 0.0005


async def held(work: Callable[[], Awaitable[Any]]) -> float:
    """The longest gap (ms) between a TICK_S timer's wake-ups while `work` runs."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.005)
    gaps.clear()
    await work()
    stop.set()
    await ticker
    return max(gaps) * 1e3


def _word(address: str) -> str:
    return "0x" + address[2:].lower().rjust(64, "0")


def _adding_block(det: Detector, deployment: dict[str, Any], k: int) -> Block:
    """The next block: DEX A's factory creates a DAI/WBTC pair at a new address."""
    tokens = deployment["tokens"]
    t0, t1 = pair_key(tokens["DAI"]["address"], tokens["WBTC"]["address"])
    pair = to_checksum_address(hashlib.sha256(f"probe-pair:{k}".encode()).digest()[:20])
    log = Log(address=deployment["dexes"][0]["factory"],
              topics=[PAIR_CREATED_TOPIC, _word(t0), _word(t1)], data=_word(pair) + f"{k:064x}",
              log_index=0, tx_hash="0x" + f"{k + 1:064x}")  # fmt: skip
    number = det.registry.block_number + 1
    return Block(chain_id=CHAIN_ID, number=number, hash="0x" + f"{number:064x}",
                 parent_hash=det.registry.block_hash, timestamp=int(time.time()),
                 base_fee_per_gas=10**9, logs=[log])  # fmt: skip


def _timed(into: list[float], settle: Callable[..., None]) -> Callable[..., None]:
    """`settle`, its duration (ms) appended to `into`: a synchronous piece, so a hold."""

    def run(whole: bool = True) -> None:
        started = time.perf_counter()
        settle(whole=whole)
        into.append((time.perf_counter() - started) * 1e3)

    return run


def _whole(whole: bool = True) -> None:
    """settle_heap as before: the whole heap at every load."""
    settle_heap()


async def _one_pass(det: Detector, slice_s: float | None) -> None:
    det.rebuild_index()


async def probe(rounds: int) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {
        "reload": {},
        "reload's settle_heap": {},
        "block adding a pool": {},
    }
    real_settle, real_rebuild = service.settle_heap, index_steps.rebuild
    with devnet_stack() as stack:
        settings = load_settings(stack.config)
        rpc = RpcPool([RpcEndpoint(name="devnet", url=stack.node.rpc_url, timeout_s=30)])
        contracts = read_deployment(stack.base / "deployment.json", CHAIN_ID)
        det = Detector(_Runtime(settings, _Bus()), rpc, contracts)  # type: ignore[arg-type]
        await det.load()  # start-up's, not timed
        k = 0
        for r in range(rounds):
            arms = ("before", "after") if r % 2 == 0 else ("after", "before")
            for arm in arms:
                settles: list[float] = []
                service.settle_heap = _timed(settles, real_settle if arm == "after" else _whole)
                try:
                    hold = await held(det.load)
                finally:
                    service.settle_heap = real_settle
                out["reload"].setdefault(arm, []).append(hold)
                out["reload's settle_heap"].setdefault(arm, []).extend(settles)
                print(f"  reload {arm}: {hold:.1f} ms, settle {settles[0]:.1f} ms", flush=True)
            for arm in arms * 2:
                k += 1
                block = _adding_block(det, stack.deployment, k)
                det.head = det.head or block
                env = Envelope(block, "blocks", block.hash, block.hash, time.time_ns())
                index_steps.rebuild = real_rebuild if arm == "after" else _one_pass
                try:
                    hold = await held(partial(det.on_block, env, live=True))
                finally:
                    index_steps.rebuild = real_rebuild
                out["block adding a pool"].setdefault(arm, []).append(hold)
                print(f"  block adding a pool {arm}: {hold:.1f} ms "
                      f"({len(det.index.cycles)} cycles)", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(f"load {os.getloadavg()}", flush=True)
    out = asyncio.run(probe(args.rounds))
    for what, arms in out.items():
        for arm, holds in arms.items():
            each = sorted(round(h, 1) for h in holds)
            print(f"{what}, {arm}: largest hold median {statistics.median(holds):.1f} ms, "
                  f"max {max(holds):.1f} ms (n={len(holds)}): {each}")  # fmt: skip
    print(f"load {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
