"""path_model: the float model the coarse search climbs on must price like the exact hops (to
far under the search's stopping gap of 1e-3 of a middle unit, ~3e5 wei) and must steer the
climb to the same first middle amounts, on the cycles where degenbot once won (exact pool
states in fixtures/mixed_vs_degenbot.json)."""

from __future__ import annotations

from typing import Any

import pytest
from mev_common.amm.coarse_search import coarse_middle_search
from mev_common.amm.local_hop import local_path
from mev_common.amm.mixed_sizing import continuous_optimum
from mev_common.amm.path_model import _curve, model_value

from tests.unit.amm.test_mixed_vs_degenbot import MAX_INPUT, THREE_POOL, leg_of

TOLERANCE_WEI = 50_000  # measured: under 1e4 on these cycles; a middle unit is ~3e8 wei


def anchored(fixture: dict[str, Any]) -> tuple[Any, ...]:
    legs = [leg_of(s) for s in fixture["legs"]]
    x_c, bound = continuous_optimum(legs, MAX_INPUT)
    path = local_path(x_c, legs)
    assert path is not None
    amounts, hops = path
    first_least, middle_out, last_out = (hops[0].least_in_fn(), hops[1].out_fn(),
                                         hops[2].out_fn())  # fmt: skip

    def exact(u: int) -> int | None:
        x = first_least(u)
        return None if x is None or x > MAX_INPUT else last_out(middle_out(u)) - x

    return legs, amounts, hops, bound, exact


@pytest.mark.parametrize("fixture", THREE_POOL, ids=lambda c: f"cycle{c['bench_cycle']}")
def test_model_prices_like_the_exact_hops(fixture: dict[str, Any]) -> None:
    _, amounts, hops, _, exact = anchored(fixture)
    u_ref = amounts[1]
    profit_ref = exact(u_ref)
    x_ref = hops[0].least_in_fn()(u_ref)
    assert profit_ref is not None and x_ref is not None
    calls: list[int] = []

    def counted(u: int) -> int | None:
        calls.append(u)
        return exact(u)

    value = model_value((hops[0], hops[1], hops[2]), u_ref, x_ref, profit_ref, MAX_INPUT, counted)
    assert value is not counted  # anchored: the model prices
    offsets = [
        d * s for d in (1, 2, 7, 999, 1000, 1001, 12_345, 400_000, 2_000_000) for s in (1, -1)
    ]
    worst = 0
    for d in offsets:
        model, want = value(u_ref + d), exact(u_ref + d)
        assert (model is None) == (want is None)
        if model is not None and want is not None:
            worst = max(worst, abs(model - want))
    assert worst <= TOLERANCE_WEI
    # past the first hop's range end (a V2 pair: past its reserve) it prices exactly
    first = _curve(hops[0])
    assert first is not None
    far = first.base + int(first.max_out) + 1
    calls.clear()
    assert value(far) == exact(far)
    assert calls == [far]


@pytest.mark.parametrize("fixture", THREE_POOL, ids=lambda c: f"cycle{c['bench_cycle']}")
def test_model_steers_the_climb_as_the_exact_hops_do(fixture: dict[str, Any]) -> None:
    legs, amounts, hops, bound, _ = anchored(fixture)
    three = (hops[0], hops[1], hops[2])
    on_model = coarse_middle_search(legs, amounts[1], MAX_INPUT, bound, hops=three)
    on_exact = coarse_middle_search(legs, amounts[1], MAX_INPUT, bound, hops=three, model=False)
    assert on_model == on_exact
    assert len(on_model) > 1  # the climb moved
