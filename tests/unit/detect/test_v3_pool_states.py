"""Detect keeps a bounded number of V3 pool states, however many swaps move its pools.

Every V3 swap (a block's Swap log, a pending victim's post-swap state) makes a new immutable
V3Pool; the search's per-state caches (local_hop's first steps, mixed_sizing's first pieces)
held every state they met until 4,096 entries each, so in `make run` detect's live V3Pool
count climbed by ~120 a minute after gc.collect() (PERF_HISTORY, h100 and h103). They keep the
newest PER_POOL states per pool address and direction now (pool_states.py)."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from dataclasses import replace

from eth_utils import to_checksum_address
from mev_common.amm.cycles import CycleIndex, find_cycles
from mev_common.amm.local_hop import FIRST_STEPS_PER_POOL
from mev_common.amm.mixed_sizing import FIRST_PIECES_PER_POOL
from mev_common.amm.pool_states import PoolStates
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool

from bench import detect_profile
from bench.swaps import pending_swaps
from services.detect.search import search
from tests.unit.detect.test_v3_detect import V2, WETH, strategies, v2_pair, v3_pool

HERE = to_checksum_address("0x" + "3c" * 20)  # no other test's pool: counted alone


def live_states() -> Counter[str]:
    """Live V3Pool objects per address, garbage collected first (so: reachable)."""
    gc.collect()
    return Counter(o.address for o in gc.get_objects() if type(o) is V3Pool)


def test_a_pool_moved_n_times_leaves_the_same_states_alive_at_50_and_500() -> None:
    """A V3 pool moved by N swaps, alternately each way (as victims move it), and detect's
    search run over the mixed cycles after each: 4 states alive after N = 50 and N = 500,
    the current one and the caches' (the first steps' 2 newest one way and the very first the
    other way, the first pieces' 2 newest each way: ages 0-2 and the first). Main kept every
    state searched: 50 and 500."""
    pool = replace(v3_pool(), address=HERE)
    pools: dict[str, V2Pool | V3Pool] = {HERE: pool, V2: v2_pair(1.03)}
    index, settings = CycleIndex(find_cycles(pools.values(), [WETH])), strategies()
    counts = []
    for n in (50, 450):  # 50, then 500 in all
        for i in range(n):
            result = pool.swap(i % 2 == 0, 10**15 + i)
            pool = pools[HERE] = pool.after_swap(
                result.sqrt_price_x96, result.tick, result.liquidity
            )
            search(index.touching([HERE]), pools, settings, base_fee=10**9)
        counts.append(live_states()[HERE])
    assert counts == [4, 4]


def test_detects_pending_path_keeps_a_bounded_number_of_states_per_pool() -> None:
    """Detect's whole pending path (the service's Detector over the devnet's 42 V3 pools and
    its V2 pairs, bench/detect_profile.py: no bus, no chain) fed 2,000 of the devnet flow's
    pending swaps (V2 and V3): no pool has more states alive than the registry's plus each
    cache's PER_POOL a direction (4 at most here, 94 in all; main kept up to 27, 508 in all)."""
    found, deployment, _ = detect_profile.detector()
    payloads = pending_swaps(deployment, 2_000, seed=8)
    asyncio.run(detect_profile.feed(found, payloads))
    ours = found.registry.v3.pools.keys()
    states = {a: n for a, n in live_states().items() if a in ours}
    assert len(ours) == len(states) == 42
    assert max(states.values()) <= 1 + 2 * (FIRST_STEPS_PER_POOL + FIRST_PIECES_PER_POOL)


def test_pool_states_keeps_the_newest_per_address_and_direction() -> None:
    kept: PoolStates[int] = PoolStates(2)
    a = [replace(v3_pool(), address=HERE, tick=t) for t in range(3)]
    other = replace(v3_pool(), address=V2)
    for i, p in enumerate(a):
        assert kept.put(p, True, i) == i
    kept.put(other, True, 9)
    kept.put(a[0], False, 5)  # the other direction: its own two
    assert kept.entries == {
        (id(a[1]), True): (a[1], 1),
        (id(a[2]), True): (a[2], 2),
        (id(other), True): (other, 9),
        (id(a[0]), False): (a[0], 5),
    }
    assert len(kept) == 4
