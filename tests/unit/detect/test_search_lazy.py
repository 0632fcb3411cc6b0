"""The lazy search (size best bound first, stop once no unsized cycle can win) returns exactly
what sizing every cycle does: same cycles, same trades, same order, for backruns (pool-disjoint)
and block triggers, over random states of the devnet's pools (2- and 3-hop, 6-decimal tokens).
The reference below sizes everything, as detect did before."""

from __future__ import annotations

import random

import pytest
from eth_utils import to_checksum_address
from mev_common.amm.cycles import Cycle, CycleIndex, cycle_reserves, find_cycles
from mev_common.amm.sizing import profit_bound, size_trade
from mev_common.amm.v2 import V2Pool, pair_key
from mev_common.settings import StrategiesSettings
from mev_ops.devnet.layout import TOKENS, plan_pools

from services.detect.pricing import gas_estimate, max_fee_per_gas
from services.detect.search import (
    MAX_PER_TRIGGER,
    Found,
    SearchStats,
    search,
    strategy_for,
)

TOKEN = {t.symbol: to_checksum_address(f"0x{i + 1:040x}") for i, t in enumerate(TOKENS)}


def pools(rng: random.Random) -> dict[str, V2Pool]:
    """The devnet's 14 pairs, each moved off its deposit by up to 3 % (arbitrage everywhere)."""
    out = {}
    for i, spec in enumerate(plan_pools(seed=1)):
        a, b = TOKEN[spec.symbol_a], TOKEN[spec.symbol_b]
        amount_a = int(spec.amount_a * rng.uniform(0.97, 1.03))
        t0, t1 = pair_key(a, b)
        r0, r1 = (amount_a, spec.amount_b) if t0 == a else (spec.amount_b, amount_a)
        address = to_checksum_address(f"0x{0xAA00 + i:040x}")
        out[address] = V2Pool(address, t0, t1, r0, r1, 30)
    return out


def strategies(min_profit: int) -> StrategiesSettings:
    cfg = {"max_gas_price": 50 * 10**9, "min_profit": min_profit}
    return StrategiesSettings.model_validate(
        {"cross_dex_arbitrage": cfg, "cyclic_arbitrage": cfg, "backrun": cfg}
    )


def size_all(
    cycles: list[Cycle], state: dict[str, V2Pool], cfgs: StrategiesSettings, base_fee: int,
    backrun: bool,
) -> list[Found]:  # fmt: skip
    """Every cycle sized, sorted, made pool-disjoint for a backrun: the eager search."""
    found = []
    for cycle in cycles:
        name = strategy_for(cycle, backrun)
        cfg = getattr(cfgs, name)
        if len(cycle.hops) > cfg.max_hops:
            continue
        trade = size_trade(cycle_reserves(cycle, state))
        if trade is None:
            continue
        gas = gas_estimate(len(cycle.hops))
        candidate = Found(
            name, cycle, trade, gas, max_fee_per_gas(base_fee, 10**9, cfg.max_gas_price)
        )
        if candidate.net_profit >= max(cfg.min_profit, 1):
            found.append(candidate)
    found.sort(key=lambda f: (-f.net_profit, f.cycle.pools))
    if backrun:
        kept: list[Found] = []
        used: set[str] = set()
        for f in found:
            if used.isdisjoint(f.cycle.pools):
                kept.append(f)
                used.update(f.cycle.pools)
        found = kept
    return found[:MAX_PER_TRIGGER]


@pytest.mark.parametrize("backrun", [True, False])
def test_lazy_search_equals_sizing_every_cycle(backrun: bool) -> None:
    rng = random.Random(12 + backrun)
    outranked = compared = 0
    for trial in range(60):
        state = pools(rng)
        index = CycleIndex(find_cycles(state.values(), [TOKEN["WETH"]], max_hops=3))
        touched = rng.sample(sorted(state), rng.choice([1, 2, 3, 14]))
        cycles = index.touching(touched)
        cfgs = strategies(rng.choice([0, 10**14, 10**16]))
        base_fee = rng.choice([10**8, 10**9, 3 * 10**10])
        stats = SearchStats()
        got = search(cycles, state, cfgs, base_fee, backrun=backrun, stats=stats)
        want = size_all(cycles, state, cfgs, base_fee, backrun)
        assert [(f.strategy, f.cycle, f.trade, f.gas, f.max_fee) for f in got] == [
            (f.strategy, f.cycle, f.trade, f.gas, f.max_fee) for f in want
        ], trial
        outranked += stats.outranked
        compared += len(want)
    assert compared >= 60  # the states do hold opportunities to compare
    assert outranked > 0  # and the laziness did skip sizings


@pytest.mark.parametrize("backrun", [True, False])
def test_near_ties_where_the_best_bound_is_not_the_best_trade(backrun: bool) -> None:
    """Two pairs nearly equal, across a 6-decimal token: their cycles' bounds differ by less
    than the rounding the exact trades lose, so the best bound is often not the best trade.
    The lazy search must then size on and still return what sizing all returns."""
    rng = random.Random(5)
    weth, usdc = TOKEN["WETH"], TOKEN["USDC"]
    t0, t1 = pair_key(weth, usdc)
    inversions = 0
    for trial in range(300):
        cheap = to_checksum_address(f"0x{0xB1:040x}")
        base_weth, base_usdc = 1_000 * 10**18, 3_000_000 * 10**6
        state = {cheap: _pair(cheap, t0, t1, weth, base_weth, base_usdc * 97 // 100)}
        for k in (2, 3):
            address = to_checksum_address(f"0x{0xB0 + k:040x}")
            jitter = rng.randrange(0, 40)
            state[address] = _pair(address, t0, t1, weth, base_weth + jitter, base_usdc)
        cycles = list(find_cycles(state.values(), [weth], max_hops=2))
        cfgs = strategies(0)
        got = search(cycles, state, cfgs, 10**9, backrun=backrun)
        want = size_all(cycles, state, cfgs, 10**9, backrun)
        assert [(f.cycle, f.trade) for f in got] == [(f.cycle, f.trade) for f in want], trial
        bounds = [profit_bound(cycle_reserves(c, state)) for c in cycles]
        best = max(range(len(cycles)), key=bounds.__getitem__)
        inversions += bool(want) and want[0].cycle != cycles[best]
    assert inversions >= 10  # the case this test is about did occur


def _pair(address: str, t0: str, t1: str, weth: str, r_weth: int, r_usdc: int) -> V2Pool:
    r0, r1 = (r_weth, r_usdc) if t0 == weth else (r_usdc, r_weth)
    return V2Pool(address, t0, t1, r0, r1, 30)
