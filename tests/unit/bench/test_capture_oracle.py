"""bench's capture oracle against hand-computed cases: swap math, optimum, gas netting, residual.

Every expected number below is worked out by hand in its comment (floors included), then the
code is also checked against trying every input where that is cheap.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.oracle.cycles import find_cycles
from bench.oracle.opportunity import EXECUTOR_GAS, Priced, best_after_block, best_net
from bench.oracle.residual import residuals, summed
from bench.oracle.swap_math import (
    Leg,
    amount_in_for,
    amount_out,
    best_input,
    cheapest_input,
    composed,
    continuous_optimum,
    cycle_profit,
    opens_profitably,
)

GWEI = 10**9
ROOT = Path(__file__).resolve().parents[3]


def _brute(legs: tuple[Leg, ...], upto: int) -> tuple[int, int]:
    """(smallest input, profit) of the best profit over every input 0..upto."""
    profit, neg_in = max((cycle_profit(x, legs), -x) for x in range(upto + 1))
    return (-neg_in, profit) if profit > 0 else (0, 0)


def test_amount_out_is_the_pairs_formula() -> None:
    # 1 WETH into 100 WETH / 300,000 USDC at 0.3 %: 1e18*9970*3e11 / (1e20*1e4 + 1e18*9970)
    # = 2_961_474_103.19 -> floor 2_961_474_103 (2,961.47 USDC)
    assert amount_out(10**18, Leg(100 * 10**18, 300_000 * 10**6, 30)) == 2_961_474_103
    assert amount_out(0, Leg(100, 200, 30)) == 0
    assert amount_out(5, Leg(0, 200, 30)) == 0


def test_two_pool_cycle_fee_free_optimum_by_hand() -> None:
    # WETH->X on (100, 200), X->WETH on (100, 200), no fee. As one pool: 40000x / (10000 + 300x)
    # (scaled by 10^4 per leg below). Real optimum x* = (sqrt(4e8) - 1e4) / 300 = 33.3, profit
    # bound (200 - 100)^2 / 300 = 33.3 -> 34. Integers: x=30: floor(6000/130)=46,
    # floor(9200/146)=63, +33; x=33: 49 -> 65, +32; x=34: 50 -> 66, +32; x=29: 44 -> 61, +32;
    # x=31: 47 -> 63, +32. The floors move the optimum from 33 to 30.
    legs = (Leg(100, 200, 0), Leg(100, 200, 0))
    assert composed(legs) == (4 * 10**12, 10**12, 3 * 10**10)
    assert continuous_optimum(legs) == (33, 34)
    assert cycle_profit(30, legs) == 33 and cycle_profit(33, legs) == 32
    assert best_input(legs) == (30, 33) == _brute(legs, 200)


def test_three_pool_cycle_optimum_by_hand() -> None:
    # (100k, 200k) x2, (200k, 150k) x0.75, (100k, 80k) x0.8, 0.3 % each: marginal 1.2 x 0.997^3.
    # At 2,478: 2478*9970*200000/(1e9 + 2478*9970) = 4822.001 -> 4822;
    # 4822*9970*150000/(2e9 + 4822*9970) = 3521.014 -> 3521;
    # 3521*9970*80000/(1e9 + 3521*9970) = 2713.108 -> 2713; profit 2713 - 2478 = 235.
    legs = (Leg(100_000, 200_000, 30), Leg(200_000, 150_000, 30), Leg(100_000, 80_000, 30))
    assert opens_profitably(legs)
    assert cycle_profit(2478, legs) == 235
    assert best_input(legs) == (2478, 235) == _brute(legs, 80_000)
    x_star, bound = continuous_optimum(legs)
    assert x_star == 2602 and bound == 236 >= 235


def test_optimum_exact_to_the_wei_at_devnet_scale() -> None:
    # WETH/USDC on A at 3,000 and on B at 3,060 (2 % apart), 18 and 6 decimals: too many inputs
    # to try them all. Any input x brings v = floor(B's output) USDC to A and returns A's
    # output of v, so the best x for a given v is the least one reaching it (the pair's
    # formula inverted, ceil); every v within 20,000 USDC units (x within ~7e12 wei) of the
    # chosen one is tried that way, and nothing may beat the real-valued bound.
    b = Leg(500 * 10**18, 1_530_000 * 10**6, 30)  # WETH -> USDC on B, where WETH is dear
    a = Leg(3_000_000 * 10**6, 1_000 * 10**18, 30)  # USDC -> WETH on A
    legs = (b, a)
    amount_in, profit = best_input(legs)
    assert cycle_profit(amount_in, legs) == profit > 0
    v = amount_out(amount_in, b)
    assert amount_in_for(v, b) == amount_in  # the least input reaching v
    assert amount_out(amount_in - 1, b) == v - 1
    for other in range(v - 20_000, v + 20_000):
        cost = cheapest_input(other, legs)
        assert cost is not None and amount_out(other, a) - cost <= profit
    x_star, bound = continuous_optimum(legs)
    assert profit <= bound and bound - profit < 10**9  # the floors cost under 1e-9 ETH here
    # a plain scan around the real-valued optimum finds less: the floors' sawtooth is
    # ~3e8 wei wide there
    assert max(cycle_profit(x, legs) for x in range(x_star - 2_000, x_star + 2_000)) < profit


def test_no_profit_returns_zero() -> None:
    # the same price on both pools: 0.3 % lost each way, the first wei already loses
    legs = (Leg(1_000 * 10**18, 3_000_000 * 10**6, 30), Leg(3_000_000 * 10**6, 1_000 * 10**18, 30))
    assert not opens_profitably(legs)
    assert best_input(legs) == (0, 0) and continuous_optimum(legs) == (0, 0)
    # a gap smaller than the fees: marginal 1.005 x 0.997^2 = 0.999 < 1
    legs = (Leg(1000 * 10**18, 3_015_000 * 10**6, 30), Leg(3_000_000 * 10**6, 1000 * 10**18, 30))
    assert best_input(legs) == (0, 0)


def _cycle(hops: int) -> Priced:
    pairs = [
        {"dex": "A", "address": f"P{i}", "fee_bps": 30, "token0": t0, "token1": t1,
         "symbol0": t0, "symbol1": t1}
        for i, (t0, t1) in enumerate((("WETH", "X"), ("X", "Y"), ("WETH", "Y"), ("WETH", "X")))
    ]  # fmt: skip
    cycle = next(c for c in find_cycles(pairs, "WETH") if len(c.hops) == hops)
    return Priced(cycle, 10**18, 0)


def test_gas_netting_picks_the_best_net_not_the_best_gross() -> None:
    two = _cycle(2)._replace(gross_wei=10**15)
    three = _cycle(3)._replace(gross_wei=12 * 10**14)
    priced = [two, three]
    # 1 gwei: 2 hops 1e15 - 170,664 gwei = 829,336 gwei; 3 hops 1.2e15 - 259,602 gwei =
    # 940,398 gwei: the 3-hop cycle
    best = best_net(7, priced, GWEI)
    assert best is not None and best.net_wei == 940_398 * GWEI and best.block == 7
    assert best.gas_wei == EXECUTOR_GAS[False][3] * GWEI
    # 3 gwei: 1e15 - 511,992 gwei = 488,008 gwei beats 1.2e15 - 778,806 gwei = 421,194 gwei
    best = best_net(7, priced, 3 * GWEI)
    assert best is not None and best.net_wei == 488_008 * GWEI and best.cycle == two.cycle.name
    # 10 gwei: gas (1,706,640 and 2,596,020 gwei) exceeds both gross profits
    assert best_net(7, priced, 10 * GWEI) is None


def _pairs() -> list[dict[str, object]]:
    return [
        {"dex": dex, "address": f"{dex}-WETH/USDC", "fee_bps": 30, "token0": "USDC",
         "token1": "WETH", "symbol0": "USDC", "symbol1": "WETH"}
        for dex in ("A", "B")
    ]  # fmt: skip


def test_residual_nets_each_block_at_the_next_blocks_base_fee() -> None:
    cycles = find_cycles(_pairs(), "WETH")
    assert len(cycles) == 2  # A then B, B then A
    flat = {"A-WETH/USDC": (3_000_000 * 10**6, 1_000 * 10**18),
            "B-WETH/USDC": (1_500_000 * 10**6, 500 * 10**18)}  # fmt: skip
    gap = {"A-WETH/USDC": (3_000_000 * 10**6, 1_000 * 10**18),
           "B-WETH/USDC": (1_530_000 * 10**6, 500 * 10**18)}  # fmt: skip
    reserves = {10: flat, 11: gap, 12: gap}
    base_fees = {11: 7, 12: 8, 13: 10**6 * GWEI}  # block 12's trade would pay 0.001 ETH/gas
    rows = residuals(cycles, reserves, base_fees, 3 * GWEI, [10, 11, 12])
    assert [r.block for r in rows] == [10, 11, 12]
    assert rows[0].with_tip is None and rows[0].base_only is None  # same price: nothing left
    # the gap: sell WETH on B (USDC cheaper there... WETH dearer), buy back on A
    legs = (Leg(500 * 10**18, 1_530_000 * 10**6, 30), Leg(3_000_000 * 10**6, 1_000 * 10**18, 30))
    _, gross = best_input(legs)
    assert gross > 0
    gas = EXECUTOR_GAS[False][2]
    assert rows[1].base_only_wei == gross - gas * 8
    assert rows[1].with_tip_wei == gross - gas * (8 + 3 * GWEI)
    assert rows[1].with_tip is not None and rows[1].with_tip.cycle.startswith("B:WETH>USDC")
    assert rows[2].with_tip is None and rows[2].base_only is None  # 170 ETH of gas > the gap
    assert summed(rows) == (rows[1].with_tip_wei, rows[1].base_only_wei)


def test_best_after_block_none_when_every_cycle_loses() -> None:
    cycles = find_cycles(_pairs(), "WETH")
    flat = {"A-WETH/USDC": (3_000 * 10**6, 10**18), "B-WETH/USDC": (6_000 * 10**6, 2 * 10**18)}
    assert best_after_block(1, cycles, flat, 0) is None


def test_oracle_pricing_shares_no_code_with_the_bot() -> None:
    """The pricing modules load no mev_common module (so no amm, no detect) nor any service."""
    code = (
        "import sys; import bench.oracle.residual, bench.oracle.chain_state;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mev_common', 'services', 'detect', 'mev_ops')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
