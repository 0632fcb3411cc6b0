"""The float screen brackets the exact profit bound: low <= profit_bound <= high on every cycle,
for states near balance (where the float r = A/B sits within rounding of 1), far off it, and
through 6- and 8-decimal tokens; so a cycle it drops is one the exact bound drops too, and
counted the same (amm/screen.py)."""

from __future__ import annotations

import random

import pytest
from eth_utils import to_checksum_address
from mev_common.amm import screen
from mev_common.amm.cycles import Cycle, CycleIndex, cycle_reserves, find_cycles
from mev_common.amm.screen import (
    BELOW_MIN,
    KEEP,
    UNPROFITABLE,
    Rates,
    pool_rates,
    v2_bounds,
    v2_verdict,
)
from mev_common.amm.sizing import profit_bound
from mev_common.amm.v2 import V2Pool, pair_key
from mev_ops.devnet.layout import TOKENS, plan_pools

TOKEN = {t.symbol: to_checksum_address(f"0x{i + 1:040x}") for i, t in enumerate(TOKENS)}


def pools(rng: random.Random, spread: float) -> dict[str, V2Pool]:
    """The devnet's pairs (both DEXes), each reserve moved off its deposit by up to `spread`."""
    out = {}
    for i, spec in enumerate(plan_pools(seed=rng.randrange(1000))):
        a, b = TOKEN[spec.symbol_a], TOKEN[spec.symbol_b]
        amount_a = max(1, int(spec.amount_a * (1 + rng.uniform(-spread, spread))))
        t0, t1 = pair_key(a, b)
        r0, r1 = (amount_a, spec.amount_b) if t0 == a else (spec.amount_b, amount_a)
        address = to_checksum_address(f"0x{0xAA00 + i:040x}")
        out[address] = V2Pool(address, t0, t1, r0, r1, rng.choice([30, 30, 5, 100]))
    return out


def bracket(cycles: list[Cycle], state: dict[str, V2Pool]) -> list[tuple[float, int, float]]:
    rates: dict[str, Rates | None] = {a: pool_rates(p) for a, p in state.items()}
    out = []
    for cycle in cycles:
        bounds = v2_bounds(cycle.hops, rates)
        assert bounds is not None
        out.append((bounds[0], profit_bound(cycle_reserves(cycle, state)), bounds[1]))
    return out


@pytest.mark.parametrize("spread", [0.0, 1e-12, 1e-9, 1e-6, 1e-3, 0.05])
def test_the_screen_brackets_the_exact_bound(spread: float) -> None:
    rng = random.Random(int(spread * 1e12) + 7)
    profitable = 0
    for _ in range(40):
        state = pools(rng, spread)
        cycles = list(CycleIndex(find_cycles(state.values(), [TOKEN["WETH"]], max_hops=3)).cycles)
        for low, exact, high in bracket(cycles, state):
            assert low <= exact <= high, (low, exact, high)
            if exact > 0:
                profitable += 1
                assert high - low <= 4 + 1e-6 * exact  # tight: it does drop what it should
    if spread >= 1e-6:
        assert profitable > 0  # some cycles do pay: the bracket was tested above zero


def test_one_wei_off_balance_where_floats_cannot_tell_r_from_one() -> None:
    """Two pairs one wei apart at 0 fee: r - 1 ~ 1e-27, far below a float's resolution. The
    screen must not claim 'no input profits' (the exact bound is 0 here only by the fee)."""
    weth, usdc = TOKEN["WETH"], TOKEN["USDC"]
    t0, t1 = pair_key(weth, usdc)
    for fee in (0, 1, 30):
        a = V2Pool(to_checksum_address(f"0x{0xC1:040x}"), t0, t1, 10**27, 3 * 10**15, fee)
        b = V2Pool(to_checksum_address(f"0x{0xC2:040x}"), t0, t1, 10**27 + 1, 3 * 10**15, fee)
        cycles = list(find_cycles([a, b], [weth], max_hops=2))
        for low, exact, high in bracket(cycles, {a.address: a, b.address: b}):
            assert low <= exact <= high


def test_a_pool_with_an_empty_reserve_is_not_screened() -> None:
    weth, usdc = TOKEN["WETH"], TOKEN["USDC"]
    t0, t1 = pair_key(weth, usdc)
    empty = V2Pool(to_checksum_address(f"0x{0xD1:040x}"), t0, t1, 0, 10**18, 30)
    assert pool_rates(empty) is None
    full = V2Pool(to_checksum_address(f"0x{0xD2:040x}"), t0, t1, 10**20, 10**12, 30)
    cycle = next(iter(find_cycles([empty, full], [weth], max_hops=2)))
    assert v2_bounds(cycle.hops, {empty.address: None, full.address: pool_rates(full)}) is None


def test_a_pool_whose_state_changed_is_screened_on_its_new_state() -> None:
    """Rates are cached by address and checked by identity: a new state is never read stale."""
    weth, usdc = TOKEN["WETH"], TOKEN["USDC"]
    t0, t1 = pair_key(weth, usdc)
    address = to_checksum_address(f"0x{0xE1:040x}")
    before = V2Pool(address, t0, t1, 10**20, 10**12, 30)
    after = before._replace(reserve0=2 * 10**20)
    first = pool_rates(before)
    assert first is not None and screen._cache[address][0] is before
    second = pool_rates(after)
    assert second is not None and second != first and screen._cache[address][0] is after


def test_small_reserves_where_the_rounding_slack_decides() -> None:
    """Bounds of a few units: the exact bound's ceiling and isqrt floor (+1 or more over the
    real curve) are what `high` must cover here, not a relative margin."""
    rng = random.Random(3)
    weth, usdc = TOKEN["WETH"], TOKEN["USDC"]
    t0, t1 = pair_key(weth, usdc)
    above = 0
    for trial in range(3000):
        state = {}
        for k in (1, 2):
            address = to_checksum_address(f"0x{0xF0 + k:040x}")
            state[address] = V2Pool(address, t0, t1, rng.randrange(50, 5000),
                                    rng.randrange(50, 5000), rng.choice([0, 30]))  # fmt: skip
        cycles = list(find_cycles(state.values(), [weth], max_hops=2))
        for low, exact, high in bracket(cycles, state):
            assert low <= exact <= high, (trial, low, exact, high)
            above += exact > 0 and exact > high - screen.ROUNDING
    assert above > 0  # the slack was needed: without it `high` would be below the exact bound


@pytest.mark.parametrize("spread", [1e-9, 1e-4, 0.03])
def test_a_verdict_is_the_exact_bounds_own(spread: float) -> None:
    """Against minimums from 1 wei to 1e17: UNPROFITABLE only where the exact bound is < 1,
    BELOW_MIN only where 1 <= it < the minimum; and the screen does decide most cycles."""
    rng = random.Random(int(spread * 1e9) + 11)
    decided = seen = 0
    for _ in range(20):
        state = pools(rng, spread)
        rates: dict[str, Rates | None] = {a: pool_rates(p) for a, p in state.items()}
        for cycle in CycleIndex(find_cycles(state.values(), [TOKEN["WETH"]], max_hops=3)).cycles:
            exact = profit_bound(cycle_reserves(cycle, state))
            needed = rng.choice([1, 10**9, 10**14, 10**15, 10**17])
            verdict = v2_verdict(cycle.hops, rates, needed)
            seen += 1
            decided += verdict != KEEP
            if verdict == UNPROFITABLE:
                assert exact < 1
            elif verdict == BELOW_MIN:
                assert 1 <= exact < needed
    assert decided > seen // 2


@pytest.mark.parametrize("spread", [0.0, 1e-9, 1e-4, 0.03])
def test_compiled_verdicts_are_v2_verdicts_own(spread: float) -> None:
    """`v2_verdicts` over a compiled layout gives `v2_verdict`'s answer for every cycle (the
    same floats: it must, as detect's decisions rest on it), with SKIP for a hop count not
    asked, a minimum below 1 (no shortcut on r <= 1 then) and a 4-hop cycle (the generic
    loop) among them."""
    rng = random.Random(int(spread * 1e9) + 5)
    for _ in range(10):
        state = pools(rng, spread)
        cycles = list(CycleIndex(find_cycles(state.values(), [TOKEN["WETH"]], max_hops=3)).cycles)
        two, three = (next(c for c in cycles if len(c.hops) == n) for n in (2, 3))
        cycles.append(Cycle(two.hops[:1] + three.hops[1:] + two.hops[1:]))  # not a real loop
        compiled = screen.compile_cycles([c.hops for c in cycles], state)
        assert compiled is not None
        flat = [f for a in compiled.pools for f in (pool_rates(state[a]) or ())[1:]]
        rates: dict[str, Rates | None] = {a: pool_rates(p) for a, p in state.items()}
        for needed in ({2: 10**14, 3: 1, 4: 10**9}, {2: 0, 3: 10**15, 4: -5}, {3: 10**9}):
            got = screen.v2_verdicts(compiled.legs, flat, needed)
            want = [
                v2_verdict(c.hops, rates, needed[len(c.hops)])
                if len(c.hops) in needed
                else screen.SKIP
                for c in cycles
            ]
            assert got == want


def test_a_layout_needs_every_pool_and_v2_pairs_only() -> None:
    weth, usdc = TOKEN["WETH"], TOKEN["USDC"]
    t0, t1 = pair_key(weth, usdc)
    a = V2Pool(to_checksum_address(f"0x{0xA1:040x}"), t0, t1, 10**20, 10**12, 30)
    b = a._replace(address=to_checksum_address(f"0x{0xA2:040x}"))
    hops = [c.hops for c in find_cycles([a, b], [weth], max_hops=2)]
    compiled = screen.compile_cycles(hops, {a.address: a, b.address: b})
    assert compiled is not None and compiled.pools == (a.address, b.address)
    assert compiled.token0 == (t0, t0)
    assert screen.compile_cycles(hops, {a.address: a}) is None
    assert screen.compile_cycles(hops, {a.address: a, b.address: object()}) is None
