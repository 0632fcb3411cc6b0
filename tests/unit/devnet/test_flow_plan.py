"""The flow planner and the pool layout are pure functions of the seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mev_ops.devnet.flow_plan import MAX_USD, FlowPlanner
from mev_ops.devnet.layout import DEX_NAMES, PAIRS, TOKENS_BY_SYMBOL, plan_pools


def fake_deployment() -> dict[str, Any]:
    """Addresses are made up: the planner only needs names, fees and reserves."""
    tokens = {
        s: {"address": f"0x{i + 1:040x}", "decimals": t.decimals}
        for i, (s, t) in enumerate(TOKENS_BY_SYMBOL.items())
    }
    pairs = []
    for dex in DEX_NAMES:
        for a, b in PAIRS:
            pairs.append({"dex": dex, "address": f"{dex}:{a}/{b}", "symbol0": a, "symbol1": b})
    return {
        "tokens": tokens,
        "pairs": pairs,
        "dexes": [{"name": d, "fee_bps": 30} for d in DEX_NAMES],
    }


def reserves(seed: int) -> dict[str, tuple[int, int]]:
    return {
        f"{p.dex}:{p.symbol_a}/{p.symbol_b}": (p.amount_a, p.amount_b) for p in plan_pools(seed)
    }


def plan(seed: int, n: int) -> list[Any]:
    planner = FlowPlanner(fake_deployment(), reserves(1), seed, start_timestamp=1_000, rate=4.0)
    return [planner.next_swap() for _ in range(n)]


def in_another_process(expression: str, hash_seed: str) -> str:
    """repr of `expression` (over this module's names) in a fresh interpreter: a plan that
    hung on set order, hash seeds or global random state would differ from this process's."""
    code = f"from tests.unit.devnet.test_flow_plan import *; print(repr({expression}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_same_seed_same_swaps_other_seed_other_swaps() -> None:
    assert in_another_process("plan(5, 200)", "1") == repr(plan(5, 200))
    assert plan(5, 200) != plan(6, 200)


def test_swaps_are_varied_heavy_tailed_and_limited() -> None:
    swaps = plan(1, 2_000)
    assert {s.dex for s in swaps} == {"A", "B"}
    assert {len(s.path) for s in swaps} == {2, 3}
    assert any(s.eth_in for s in swaps) and not all(s.eth_in for s in swaps)
    assert len({s.user for s in swaps}) == 8
    usd = sorted(
        s.amount_in
        / 10 ** TOKENS_BY_SYMBOL[s.path[0]].decimals
        * TOKENS_BY_SYMBOL[s.path[0]].usd_price
        for s in swaps
    )
    median, top = usd[len(usd) // 2], usd[-1]
    assert top > 50 * median  # heavy tail: a few whales among many small swaps
    assert top <= MAX_USD * 1.001
    assert all(0 < s.min_out for s in swaps)
    assert all(s.deadline > 1_000 for s in swaps)
    assert [s.index for s in swaps] == list(range(2_000))


def test_pool_layout_is_reproducible_and_seeded() -> None:
    assert in_another_process("plan_pools(3)", "2") == repr(plan_pools(3))
    assert plan_pools(3) != plan_pools(4)
    assert len(plan_pools(3)) == len(DEX_NAMES) * len(PAIRS)


def test_v3_swaps_interleave_without_changing_the_v2_swaps() -> None:
    from mev_common.amm.v3 import V3Pool
    from mev_common.amm.v3_math import get_sqrt_ratio_at_tick

    deployment = fake_deployment()
    deployment["v3_pools"] = [
        {"dex": "A", "address": "A:v3", "fee": 3000, "symbol0": "USDC", "symbol1": "WETH"}
    ]
    pool = V3Pool("A:v3", "0x1", "0x2", 3000, 60, get_sqrt_ratio_at_tick(200_000), 200_000, 0)
    pool = pool.modify_position(199_980, 200_040, 10**20)
    with_v3 = FlowPlanner(deployment, reserves(1), 5, 1_000, 4.0, {"A:v3": pool})
    swaps = [with_v3.next_swap() for _ in range(600)]
    v3 = [s for s in swaps if s.fee]
    assert 150 <= len(v3) <= 270  # about 35 %
    assert {s.path for s in v3} == {("USDC", "WETH"), ("WETH", "USDC")}
    assert all(s.min_out > 0 for s in v3[:3])  # quoted on the pool model, not blind
    v2 = [s for s in swaps if not s.fee]
    alone = plan(5, len(v2))
    strip = ("index", "deadline")  # the count and so the deadline move with V3 swaps between
    assert [{k: v for k, v in vars(s).items() if k not in strip} for s in v2] == [
        {k: v for k, v in vars(s).items() if k not in strip} for s in alone
    ]
