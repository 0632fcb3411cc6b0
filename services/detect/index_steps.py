"""Detect's indexes over the pools it holds (the cycles through each pool, the V2-only cycles a
V2 victim's backrun searches, each DEX's pairs by token pair, each DEX's V3 pools), built as
steps so a live block that adds a pool rebuilds them in slices.

Why: the rebuild took ~33 ms of CPU on the devnet's 56 pools (3,296 cycles: enumerating them
~22 ms, indexing ~8 ms, the V2-only index ~3 ms) in one piece on detect's loop, while the
pending swaps that arrive right after a block waited behind it. Built as steps (a yield every
STEP_CYCLES cycles: mev_common.amm.cycles) and run by `run_sliced`, pending swaps are served
between slices. The result is the one-pass build's (tests/unit/detect/test_index_sliced.py).

What a swap served between slices sees: the block's pools and head, and the indexes from before
the block, installed whole only at the end. Their pools all still exist (a block that removed
one, a reorg undoing a PairCreated, rebuilds in one piece), so such a swap searches as if the
new pool were not there yet; the block's own search runs after the rebuild, on the new index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mev_common.amm.cycles import CycleIndex, cycle_steps
from mev_common.amm.v2 import pair_key

from services.detect.registry import PoolRegistry
from services.detect.search import BACKRUN_THROUGH_V3, V2_VICTIMS_V2_CYCLES_ONLY
from services.detect.slicing import Steps, finish, run_sliced

if TYPE_CHECKING:
    from services.detect.service import Detector


@dataclass(frozen=True)
class Indexes:
    index: CycleIndex
    backrun_index: CycleIndex  # a V2 victim's backrun cycles (V2_VICTIMS_V2_CYCLES_ONLY)
    pair_index: dict[str, dict[tuple[str, str], str]]  # DEX -> pair_key -> pair address


def build(registry: PoolRegistry, weth: str | None) -> Steps[Indexes]:
    """The indexes of the registry's pools now, as steps."""
    cycles = yield from cycle_steps(registry.all_pools.values(), [weth] if weth else [], 3)
    index = yield from CycleIndex.build_steps(cycles)
    v2 = registry.pools
    backrun_index = (
        index
        if BACKRUN_THROUGH_V3 and not V2_VICTIMS_V2_CYCLES_ONLY
        else (yield from index.only_steps(lambda c: all(hop.pool in v2 for hop in c.hops)))
    )
    by_dex: dict[str, dict[tuple[str, str], str]] = {}
    for address, pool in v2.items():
        by_dex.setdefault(registry.dex_of[address], {})[pair_key(pool.token0, pool.token1)] = (
            address
        )
    return Indexes(index, backrun_index, by_dex)


def install(det: Detector, built: Indexes) -> None:
    """The new indexes in place at once (the V3 pools' DEXes: cached, cheap after the load)."""
    det.index, det.backrun_index = built.index, built.backrun_index
    det.pair_index = built.pair_index
    det.v3_routers.reindex(det.registry.v3.pools.values())


def still_held(det: Detector) -> bool:
    """Whether every pool the current indexes name is still in the registry: what a pending
    swap served during a sliced rebuild reads through them."""
    pools, v2 = det.registry.all_pools, det.registry.pools
    return all(p in pools for p in det.index.pools()) and all(
        a in v2 for pairs in det.pair_index.values() for a in pairs.values()
    )


async def rebuild(det: Detector, slice_s: float | None) -> None:
    """Rebuild and install the indexes: in slices of `slice_s` (a live block), in one pass
    with None (a replayed block) or when a pool the current indexes name is gone."""
    steps = build(det.registry, det.contracts.weth)
    if slice_s is None or not still_held(det):
        install(det, finish(steps))
        return
    install(det, await run_sliced(steps, slice_s))
