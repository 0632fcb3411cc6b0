"""The cycles where our mixed V2/V3 sizing once earned less than degenbot 0.3.0 (bench
amm_v3_peer's seeded cases; "ofNseeds": make_cases(N, ...), wider than the bench's 3), with
their exact pool states (fixtures/mixed_vs_degenbot.json): degenbot's input re-run through the
exact integer math is the bar, and a brute force around the answers shows none earns more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mev_common.amm.legs import Leg, V3Leg, leg_least_input, leg_out, path_amounts
from mev_common.amm.local_hop import LocalHop
from mev_common.amm.mixed_sizing import continuous_optimum, size_mixed
from mev_common.amm.v3 import V3Pool

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "mixed_vs_degenbot.json").read_text())
MAX_INPUT = 100 * 10**18  # the bench's cap, both sides
TWO_POOL = [c for c in FIXTURES if len(c["legs"]) == 2]
THREE_POOL = [c for c in FIXTURES if len(c["legs"]) == 3]


def leg_of(spec: dict[str, Any]) -> Leg:
    if "v2" in spec:
        reserve_in, reserve_out, fee_bps = spec["v2"]
        return (int(reserve_in), int(reserve_out), fee_bps)
    p = spec["v3"]
    pool = V3Pool(
        p["address"], p["token0"], p["token1"], p["fee"], p["tick_spacing"],
        int(p["sqrt_price_x96"]), p["tick"], int(p["liquidity"]),
        {int(t): (int(g), int(n)) for t, (g, n) in p["ticks"].items()},
        {int(w): int(b) for w, b in p["bitmap"].items()},
    )  # fmt: skip
    return V3Leg(pool, spec["zero_for_one"])


def profit(x: int, legs: list[Leg]) -> int:
    amounts = path_amounts(x, legs)
    return (amounts[-1] if len(amounts) == len(legs) + 1 else 0) - x


def test_fixtures_are_the_bench_answers() -> None:
    """degenbot's input earns what the bench measured, and more than the old sizing did."""
    for c in FIXTURES:
        legs = [leg_of(s) for s in c["legs"]]
        assert profit(int(c["degenbot_input"]), legs) == int(c["degenbot_profit"])
        assert int(c["old_profit"]) < int(c["degenbot_profit"])


@pytest.mark.parametrize("fixture", TWO_POOL, ids=lambda c: f"cycle{c['bench_cycle']}")
def test_two_pool_never_below_degenbot(fixture: dict[str, Any]) -> None:
    """A V3 first hop floors its input less fee: the tight input alone wasted a wei here."""
    legs = [leg_of(s) for s in fixture["legs"]]
    trade = size_mixed(legs, MAX_INPUT)
    assert trade is not None
    assert trade.profit == profit(trade.amount_in, legs)
    assert trade.profit >= int(fixture["degenbot_profit"])
    # the exact optimum: no input within 2,000 wei of either answer earns more (the profit
    # curve is flat there to far under a wei; only the roundings move it)
    for centre in (trade.amount_in, int(fixture["degenbot_input"])):
        best = max(profit(x, legs) for x in range(centre - 2_000, centre + 2_000))
        assert best <= trade.profit


@pytest.mark.parametrize("fixture", THREE_POOL, ids=lambda c: f"cycle{c['bench_cycle']}")
def test_three_pool_through_two_coarse_tokens_never_below_degenbot(fixture: dict[str, Any]) -> None:
    """WETH -> USDT -> USDC -> WETH (V2 and V3 hops): the middle hop's output floor and the V3
    hops' fee floors each waste up to a unit (~3e8 wei) whatever the input; 24 samples of the
    middle rotation alone left up to 4.6e7 wei to degenbot here."""
    legs = [leg_of(s) for s in fixture["legs"]]
    trade = size_mixed(legs, MAX_INPUT)
    assert trade is not None
    assert trade.profit == profit(trade.amount_in, legs)
    assert trade.profit >= int(fixture["degenbot_profit"])
    # the unrounded optimum bounds every input from above: ours within 1/4 of a unit (~3e8 wei)
    # of it (not proven the exact optimum: the search stops after MAX_EVALS prices)
    _, bound = continuous_optimum(legs, MAX_INPUT)
    assert 0 <= bound - trade.profit < 3 * 10**8 // 4
    # and no first-middle amount next to ours, each at its least input, earns more
    u = trade.amounts_out[0]
    for near in range(u - 40, u + 41):
        x = leg_least_input(legs[0], near)
        assert x is None or profit(x, legs) <= trade.profit


def test_local_hop_is_the_pools_exact_swap() -> None:
    """coarse_search prices hops by their last swap step alone: the same integers as the whole
    swap (leg_out, equal to the pool on anvil), near its anchor and far off it (other steps,
    where it falls back to the whole swap)."""
    for c in FIXTURES:
        legs = [leg_of(s) for s in c["legs"]]
        amounts = path_amounts(int(c["degenbot_input"]), legs)
        for leg, amount in zip(legs, amounts, strict=False):
            hop = LocalHop(leg, amount)
            probes = [amount + d for d in range(-300, 300, 7)]
            probes += [amount * k // 8 for k in (1, 4, 7, 9, 12, 16, 64)]
            assert [hop.out(a) for a in probes] == [leg_out(leg, a) for a in probes]
            for a in probes[::9]:
                want = leg_out(leg, a)
                if want > 0:
                    least = hop.least_in(want)
                    exact = leg_least_input(leg, want)
                    assert least is not None and exact is not None and abs(least - exact) <= 2


def test_local_hop_least_input_out_is_the_least_input_and_its_output() -> None:
    """size_mixed prices a candidate from the first hop's output its least-input probes found
    (least_input_out): that input is leg_least_input's exactly, and the output beside it is
    the pool's for that input (leg_out), whichever way the probes went (up, down, or not)."""
    priced = 0
    for c in FIXTURES:
        legs = [leg_of(s) for s in c["legs"]]
        amounts = path_amounts(int(c["degenbot_input"]), legs)
        for leg, amount in zip(legs, amounts, strict=False):
            hop = LocalHop(leg, amount)
            out = leg_out(leg, amount)
            for want in [out + d for d in range(-200, 200, 3)] + [out * 3 // 4, out * 5 // 4]:
                paid, got = hop.least_input_out(want)
                assert paid == hop.least_input(want) == leg_least_input(leg, want)
                if got is not None:
                    assert paid is not None and got == leg_out(leg, paid) >= want
                    priced += 1
    assert priced > 1_000  # the V3 hops' probes priced most of them
