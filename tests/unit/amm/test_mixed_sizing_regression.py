"""Speed-ups of mixed V2/V3 sizing must not cost a wei: on every cycle of bench amm_v3_peer's
case set (846 cycles, 242 profitable, 2- and 3-pool), today's answer earns at least what the
recorded one did (fixtures/mixed_sizing_before.json, written by the code before the speed-up),
and the recorded answers are re-checked on the exact integer path so the bar itself is true."""

from __future__ import annotations

import json
from pathlib import Path

from mev_common.amm.legs import cycle_legs, path_amounts
from mev_common.amm.mixed_sizing import size_mixed
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool

from bench.scenarios.amm_peer import MAX_INPUT
from bench.scenarios.amm_v3_peer import make_cases

BEFORE = json.loads((Path(__file__).parent / "fixtures" / "mixed_sizing_before.json").read_text())


def test_never_below_the_recorded_answers() -> None:
    v2, v3, cycles, _ = make_cases(BEFORE["seeds"], 0, BEFORE["three_pool_per_seed"])
    pools: dict[str, V2Pool | V3Pool] = {p.address: p for p in v2}
    pools.update({p.address: p for p in v3})
    assert len(cycles) == len(BEFORE["answers"])
    compared = equal = 0
    for cycle, answer in zip(cycles, BEFORE["answers"], strict=True):
        legs = cycle_legs(cycle, pools)
        trade = size_mixed(legs, MAX_INPUT)
        if answer is None:
            assert trade is None  # nothing appears from nowhere either: same search
            continue
        old_in, old_profit = int(answer[0]), int(answer[1])
        assert path_amounts(old_in, legs)[-1] - old_in == old_profit
        assert trade is not None
        amounts = path_amounts(trade.amount_in, legs)
        assert trade.profit == amounts[-1] - trade.amount_in  # what the pools pay, exactly
        assert trade.profit >= old_profit, (cycle, trade.profit, old_profit)
        compared += 1
        equal += trade.profit == old_profit
    assert compared == 242
    assert equal == compared  # the same search, evaluated faster: the same answers


DEGENBOT = json.loads((Path(__file__).parent / "fixtures" / "degenbot_inputs.json").read_text())


def test_never_below_degenbot_on_any_bench_cycle() -> None:
    """Issue 12's bar on every cycle of the bench's degenbot comparison (scenario 6's cycles):
    degenbot 0.3.0's chosen input (recorded), re-run through the pools' exact integer math,
    never earns more than our answer. Counted as the bench counts: cycles either side finds
    profitable."""
    assert (DEGENBOT["seeds"], DEGENBOT["three_pool_per_seed"]) == (
        BEFORE["seeds"],
        BEFORE["three_pool_per_seed"],
    )
    v2, v3, cycles, _ = make_cases(DEGENBOT["seeds"], 0, DEGENBOT["three_pool_per_seed"])
    pools: dict[str, V2Pool | V3Pool] = {p.address: p for p in v2}
    pools.update({p.address: p for p in v3})
    assert len(cycles) == len(DEGENBOT["inputs"])
    counts = {"ahead": 0, "equal": 0, "behind": 0}
    for cycle, theirs_in in zip(cycles, DEGENBOT["inputs"], strict=True):
        legs = cycle_legs(cycle, pools)
        theirs = 0
        if theirs_in is not None:
            amounts = path_amounts(int(theirs_in), legs)
            theirs = max(0, amounts[-1] - int(theirs_in)) if len(amounts) == len(legs) + 1 else 0
        trade = size_mixed(legs, MAX_INPUT)
        ours = trade.profit if trade else 0
        if ours or theirs:
            counts["ahead" if ours > theirs else "equal" if ours == theirs else "behind"] += 1
    assert counts == {"ahead": 227, "equal": 15, "behind": 0}
