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
