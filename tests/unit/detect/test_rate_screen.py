"""The rate screen of a V3 victim's cycles (services/detect/rate_screen.py) changes no decision:
over the devnet's pools (bench.detect_profile), each V3 pool (and pairs of them, as a multi-hop
SwapRouter swap moves) swapped by random amounts either way, with a V2 pair beside them at times
(a follow-on's search), the backrun search with the screen
finds the same opportunities, to the wei and in order, with the same counts, as the general
loop's exact test alone; and the screen did settle most cycles."""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import pytest
from mev_common.amm.cycles import Cycle, CycleHop
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool

import services.detect.search as search_module
from bench import detect_profile
from services.detect import rate_screen
from services.detect.search import Found, SearchStats, search


def swapped(pool: V3Pool, rng: random.Random) -> V3Pool:
    """The pool after a random exact-input swap of up to ~all its in-range liquidity."""
    zero_for_one = rng.random() < 0.5
    scale = pool.liquidity * (
        pool.sqrt_price_x96 >> 96 if not zero_for_one else (1 << 96) // max(pool.sqrt_price_x96, 1)
    )
    amount = max(1, int(max(scale, 10**6) * rng.choice((1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.3))))
    result = pool.swap(zero_for_one, amount)
    return pool.after_swap(result.sqrt_price_x96, result.tick, result.liquidity)


def nudged(pair: V2Pool, rng: random.Random) -> V2Pool:
    """The pair after a random trade's worth of reserve change (a follow-on moves pairs too)."""
    f = rng.choice((0.97, 0.995, 1.005, 1.03))
    return pair._replace(reserve0=int(pair.reserve0 * f), reserve1=int(pair.reserve1 / f))


def searched(
    screen: bool, cycles: tuple[Cycle, ...], post: dict[str, V2Pool | V3Pool]
) -> tuple[list[Found], SearchStats]:
    det, _, _ = world()
    stats = SearchStats()
    search_module.RATE_SCREEN = screen
    try:
        found = search(cycles, post, det.strategies, 10**9, backrun=True, priority_fee=2 * 10**9,
                       victim_max_fee=30 * 10**9, stats=stats)  # fmt: skip
    finally:
        search_module.RATE_SCREEN = True
    return found, stats


@cache
def world() -> Any:
    """The devnet-like Detector (built once, on first use: not at collection)."""
    return detect_profile.detector()


@pytest.mark.parametrize("seed", range(3))
def test_the_rate_screen_changes_no_decision(seed: int) -> None:
    det, _, _ = world()
    rng = random.Random(seed)
    v3 = dict(det.registry.v3.pools)
    assert len(v3) >= 4
    settled = found_any = 0
    for _ in range(60):
        moved: dict[str, V2Pool | V3Pool] = {
            a: swapped(v3[a], rng) for a in rng.sample(sorted(v3), rng.choice((1, 1, 2)))
        }
        if rng.random() < 0.3:  # as a follow-on's search: cycles through V2 pairs beside them
            pair = rng.choice(sorted(det.registry.pools))
            moved[pair] = nudged(det.registry.pools[pair], rng)
        cycles = det.index.through(moved)
        post = {**det.registry.pools, **v3, **moved}
        exact, exact_stats = searched(False, cycles, post)
        fast, fast_stats = searched(True, cycles, post)
        assert fast == exact  # every Found: cycle, amounts in and out, profit, gas, fee
        assert fast_stats == exact_stats
        assert exact_stats.searched == sum(1 for c in cycles if len(c.hops) <= 3)
        layout = rate_screen.rate_layout(cycles, post)
        assert layout is not None
        screened = rate_screen.screen(layout, post)
        assert screened is not None
        settled += sum(screened[1].values())
        found_any += bool(exact)
    assert found_any >= 10  # not vacuous: swaps that open backruns
    assert settled >= 60 * 50  # the screen took most cycles off the exact loop


def test_a_hop_without_a_rate_leaves_the_cycle_to_the_exact_test() -> None:
    det, _, _ = world()
    address, pool = next(iter(det.registry.v3.pools.items()))
    empty = pool.after_swap(pool.sqrt_price_x96, pool.tick, 0)  # no liquidity at its price
    post: dict[str, V2Pool | V3Pool] = {**det.registry.pools, **det.registry.v3.pools}
    post[address] = empty
    cycles = det.index.through({address})
    layout = rate_screen.rate_layout(cycles, post)
    assert layout is not None
    screened = rate_screen.screen(layout, post)
    assert screened is not None
    left = {cycles[i] for i in screened[0]}
    assert all(c in left for c in cycles if address in c.pools)
    assert searched(True, cycles, post) == searched(False, cycles, post)


def test_a_v2_only_tuple_is_not_laid_out_and_a_missing_pool_is_not_screened() -> None:
    det, _, _ = world()
    pair = next(iter(det.registry.pools))
    assert rate_screen.rate_layout(det.backrun_index.through({pair}), det.registry.pools) is None
    address = next(iter(det.registry.v3.pools))
    hop = CycleHop(address, "0x" + "1" * 40, "0x" + "2" * 40)
    lone = (Cycle((hop, CycleHop("0x" + "3" * 40, hop.token_out, hop.token_in))),)
    assert rate_screen.rate_layout(lone, det.registry.v3.pools) is None


def test_each_v3_pools_cycles_are_laid_out_before_its_first_victim() -> None:
    det, _, _ = world()
    rate_screen._layouts.clear()
    pools = det.registry.all_pools
    v3 = det.registry.v3.pools
    assert rate_screen.lay_out_each(det.index, pools, v3) == len(v3)
    for address, pool in v3.items():  # a victim's `through` (its applied pools) finds it laid out
        cycles = det.index.through({address: pool})
        assert rate_screen._layouts[id(cycles)].cycles is cycles
        assert rate_screen.rate_layout(cycles, pools) is rate_screen._layouts[id(cycles)]
