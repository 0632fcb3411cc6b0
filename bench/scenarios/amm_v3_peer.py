"""Scenario: our V3 swap math and mixed V2/V3 cycle sizing against degenbot 0.3.0, same states.

Pools are the devnet's (layout.plan_v3_pools and plan_pools per seed; WETH, USDC, USDT, DAI):
each V3 pool gets its planned positions (liquidity from the amounts, as the position manager
computes it) and then a seeded user swap that moves it off price, often across ticks; each V2
pair is amm_peer's. Cycles are the 2- and 3-pool cycles from WETH with at least one V3 hop (all
2-pool ones, a seeded sample of the 3-pool ones). Both sides get the same cases and input cap;
degenbot runs in its own venv as a subprocess (bench/peers/degenbot_v3_side.py). Swaps are
compared to the wei (an input a pool cannot take whole counts as "no swap" on both sides);
profits exactly (degenbot's chosen input re-run through integer math on both sides), on every
cycle either side finds profitable; times are per call, medians over the same calls.
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mev_common.amm.cycles import Cycle, find_cycles
from mev_common.amm.legs import V3Leg, cycle_legs, leg_out, path_amounts
from mev_common.amm.mixed_sizing import size_mixed
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import TICK_SPACING, V3Pool
from mev_common.amm.v3_math import Q96, get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio
from mev_ops.devnet.deploy_v3 import initial_sqrt_price, position_ticks
from mev_ops.devnet.layout import TOKENS_BY_SYMBOL, plan_v3_pools, raw_amount

from bench.results import Row, ScenarioResult
from bench.scenarios import amm_peer
from bench.scenarios.amm_peer import (
    BENCH_DIR,
    MAX_INPUT,
    SYMBOLS,
    TOKEN_ADDRESS,
    _time_runs,
    _times_of,
    _verdict,
    verdict_note,
)
from bench.scenarios.amm_peer import make_cases as v2_cases
from bench.stats import RunStats, Summary, ratio, summarize

KEY = "amm_v3_vs_degenbot"
TITLE = "V3 math and mixed V2/V3 cycle sizing vs degenbot 0.3.0"
PEER_SCRIPT = BENCH_DIR / "peers" / "degenbot_v3_side.py"


def liquidity_for_amounts(sqrt_p: int, sqrt_a: int, sqrt_b: int, amount0: int, amount1: int) -> int:
    """LiquidityAmounts.getLiquidityForAmounts (the position manager's mint)."""

    def for0(a: int, b: int) -> int:
        return amount0 * (a * b // Q96) // (b - a)

    def for1(a: int, b: int) -> int:
        return amount1 * Q96 // (b - a)

    if sqrt_p <= sqrt_a:
        return for0(sqrt_a, sqrt_b)
    if sqrt_p < sqrt_b:
        return min(for0(sqrt_p, sqrt_b), for1(sqrt_a, sqrt_p))
    return for1(sqrt_a, sqrt_b)


def make_v3_pools(seed: int) -> list[V3Pool]:
    """The devnet's V3 pools of one seed between SYMBOLS, each moved by a seeded user swap."""
    rng = random.Random(seed * 104_729)
    pools = []
    for n, spec in enumerate(plan_v3_pools(seed)):
        if spec.symbol_a not in SYMBOLS or spec.symbol_b not in SYMBOLS:
            continue
        sym0, sym1 = sorted((spec.symbol_a, spec.symbol_b), key=lambda s: TOKEN_ADDRESS[s])
        sqrt_price = initial_sqrt_price(spec, sym0)
        tick, spacing = get_tick_at_sqrt_ratio(sqrt_price), TICK_SPACING[spec.fee]
        address = "0x" + f"{seed * 1000 + n + 90_000:040d}"
        pool = V3Pool(address, TOKEN_ADDRESS[sym0], TOKEN_ADDRESS[sym1], spec.fee, spacing,
                      sqrt_price, tick, 0)  # fmt: skip
        for pos in spec.positions:
            lower, upper = position_ticks(tick, spacing, pos.down, pos.up)
            liquidity = liquidity_for_amounts(
                sqrt_price, get_sqrt_ratio_at_tick(lower), get_sqrt_ratio_at_tick(upper),
                raw_amount(sym0, pos.usd), raw_amount(sym1, pos.usd),
            )  # fmt: skip
            pool = pool.modify_position(lower, upper, liquidity)
        zero_for_one = rng.random() < 0.5
        depth = (pool.liquidity * Q96 // sqrt_price) if zero_for_one else (
            pool.liquidity * sqrt_price // Q96)  # fmt: skip
        moved = pool.swap(zero_for_one, max(1, int(depth * rng.uniform(0.0002, 0.004))))
        pools.append(pool.after_swap(moved.sqrt_price_x96, moved.tick, moved.liquidity))
    return pools


def make_cases(
    seeds: int, swaps_per_pool: int, three_hop_per_seed: int
) -> tuple[list[V2Pool], list[V3Pool], list[Cycle], list[tuple[V3Pool, str, int]]]:
    """amm_peer's V2 pairs and our V3 pools per seed; their mixed cycles; V3 swaps (both
    directions, from dust to a third of a range's depth)."""
    all_v2, _, _ = v2_cases(seeds, 0)
    v3_all: list[V3Pool] = []
    cycles: list[Cycle] = []
    swaps: list[tuple[V3Pool, str, int]] = []
    for seed in range(1, seeds + 1):
        rng = random.Random(seed * 7_717)
        v2 = [p for p in all_v2 if (int(p.address[2:]) - 5000) // 100 == seed]
        v3 = make_v3_pools(seed)
        v3_addresses = {p.address for p in v3}
        mixed = [c for c in find_cycles([*v2, *v3], [TOKEN_ADDRESS["WETH"]], max_hops=3)
                 if any(h.pool in v3_addresses for h in c.hops)]  # fmt: skip
        three = [c for c in mixed if len(c.hops) == 3]
        cycles += [c for c in mixed if len(c.hops) == 2]
        cycles += rng.sample(three, min(three_hop_per_seed, len(three)))
        for pool in v3:
            for zero_for_one in (True, False):
                depth = (pool.liquidity * Q96 // pool.sqrt_price_x96) if zero_for_one else (
                    pool.liquidity * pool.sqrt_price_x96 // Q96)  # fmt: skip
                token = pool.token0 if zero_for_one else pool.token1
                for _ in range(swaps_per_pool):
                    swaps.append((pool, token, max(1, int(depth * 10 ** rng.uniform(-7, -2.3)))))
        v3_all += v3
    return all_v2, v3_all, cycles, swaps


def _our_swap(pool: V3Pool, token: str, amount: int) -> int | None:
    out = leg_out(V3Leg(pool, token == pool.token0), amount)
    return out if out > 0 else None


def _v3_case(p: V3Pool) -> dict[str, Any]:
    return {
        "address": p.address, "token0": p.token0, "token1": p.token1, "fee": p.fee,
        "tick_spacing": p.tick_spacing, "sqrt_price_x96": p.sqrt_price_x96, "tick": p.tick,
        "liquidity": p.liquidity, "ticks": p.ticks, "bitmap": p.bitmap,
    }  # fmt: skip


def _peer(v2: list[V2Pool], v3: list[V3Pool], cycles: list[Cycle], swaps: list[Any],
          repeats: int) -> tuple[Any, str]:  # fmt: skip
    peer_python = amm_peer.PEER_PYTHON  # looked up here: a test can point it elsewhere
    if not peer_python.exists():
        return None, f"degenbot venv absent ({peer_python}): make bench creates it"
    case = {
        "tokens": [
            {"address": TOKEN_ADDRESS[s], "symbol": s, "decimals": TOKENS_BY_SYMBOL[s].decimals}
            for s in SYMBOLS
        ],
        "pools": [p._asdict() for p in v2],
        "v3_pools": [
            {
                "address": p.address,
                "token0": p.token0,
                "token1": p.token1,
                "fee": p.fee,
                "tick_spacing": p.tick_spacing,
                "sqrt_price_x96": p.sqrt_price_x96,
                "tick": p.tick,
                "liquidity": p.liquidity,
                "ticks": p.ticks,
                "bitmap": p.bitmap,
            }
            for p in v3
        ],
        "swaps": [[p.address, t, a] for p, t, a in swaps],
        "cycles": [{"pools": list(c.pools), "input_token": c.start_token} for c in cycles],
        "max_input": MAX_INPUT,
        "repeats": repeats,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(case, f)
    try:
        done = subprocess.run([str(peer_python), str(PEER_SCRIPT), f.name],
                              capture_output=True, text=True, timeout=1200)  # fmt: skip
    finally:
        Path(f.name).unlink(missing_ok=True)
    if done.returncode != 0:
        return None, f"degenbot side failed: {done.stderr.strip().splitlines()[-1:]}"
    return json.loads(done.stdout), ""


def _unequal_note(swaps: list[Any], ours: list[int | None], peer: Any) -> tuple[str, int, int]:
    """Where degenbot differs, said plainly: (note, swaps its tick walk explains, others).

    degenbot's complete-map tick walk (gen_ticks) starts an upward swap from a negative tick at
    the lower boundary of the price's own bitmap word, at or below the price (gen_ticks(ticks,
    -10, 10, up) yields -10 first), so its first step goes the wrong way. Ours walks the bitmap
    as the pool does and equals the real pool on anvil in that very case
    (tests/integration/test_v3_math_vs_pool.py: a pool at tick -207,000 swapped both ways,
    2,100 cases to the wei). Any other difference is counted against us."""
    if peer is None:
        return "", 0, 0
    off = [(p, t) for (p, t, _), a, b in zip(swaps, ours, peer["swaps"], strict=True) if a != b]
    if not off:
        return "", 0, 0
    walk = sum(t == p.token1 and p.tick < 0 for p, t in off)
    others = len(off) - walk
    note = (
        f"; the other {len(off)}: {walk} are degenbot's error, not ours (upward swaps from a "
        "negative tick, where its tick walk first steps to the word boundary below the price; "
        "our math equals the pool on anvil there, test_v3_math_vs_pool)"
    )
    if others:
        note += f", {others} unexplained (counted as ours)"
    return note, walk, others


def _never_below_row(group: str, verdict: dict[str, int], none: int, peer_name: str) -> Row:
    """Issue 13's bar as a count: cycles where our exact profit is below degenbot's (0 is the
    bar), n = every cycle either side finds profitable, compared on the same pool states."""
    n, behind = verdict["compared"], verdict["behind"]
    return Row(
        f"{group} mixed V2/V3 cycles where our profit is below degenbot's",
        "cycles",
        Summary(behind, behind, 1, n),
        peer_name,
        None,
        None,
        "",
        f"never below: {'yes' if behind == 0 else 'NO'}; of n={n} cycles either side finds "
        f"profitable: ahead {verdict['ahead']}, equal {verdict['equal']}, behind {behind} (max "
        f"shortfall {verdict['max_shortfall_wei']:,} wei; our extra profit "
        f"{verdict['extra_profit_wei']:,} wei in all); degenbot found none in {none}; profits "
        "exact (degenbot's chosen input re-run through the pools' integer math)",
    )


def run(tiny: bool = False) -> ScenarioResult:
    seeds, swaps_per_pool, three_hop, repeats = (1, 4, 20, 2) if tiny else (3, 12, 120, 3)
    v2, v3, cycles, swaps = make_cases(seeds, swaps_per_pool, three_hop)
    pools: dict[str, V2Pool | V3Pool] = {p.address: p for p in v2}
    pools.update({p.address: p for p in v3})
    legs = [cycle_legs(c, pools) for c in cycles]
    result = ScenarioResult(KEY, TITLE)
    peer, why_not = _peer(v2, v3, cycles, swaps, repeats)
    peer_name = f"degenbot {peer['version']}" if peer else "degenbot"
    absent = f"peer not measured: {why_not}" if peer is None else ""

    ours_out = [_our_swap(*s) for s in swaps]
    swap_runs = _time_runs([lambda s=s: _our_swap(*s) for s in swaps], repeats)
    equal = sum(a == b for a, b in zip(ours_out, peer["swaps"], strict=True)) if peer else None
    peer_swap = (
        summarize([RunStats(p50, p95, len(swaps)) for p50, p95 in peer["swap_runs_us"]])
        if peer
        else None
    )
    ours_swap = summarize(swap_runs)
    crossing = sum(
        out is not None and p.swap(t == p.token0, a).ticks_crossed > 0
        for (p, t, a), out in zip(swaps, ours_out, strict=True)
    )
    unequal, walk_errors, unexplained = _unequal_note(swaps, ours_out, peer)
    result.rows.append(
        Row(
            f"V3 swap exact-in amount-out ({len(swaps)} swaps, {crossing} crossing ticks)",
            "µs",
            ours_swap,
            peer_name,
            peer_swap,
            ratio(peer_swap and peer_swap.p50, ours_swap.p50),
            "degenbot/ours time",
            f"equal to the wei: {equal}/{len(swaps)}{unequal}; "
            f"median per swap over {len(swaps)} swaps "
            f"x {repeats} runs each side"
            if peer
            else absent,
        )
    )
    result.details.update({"swaps": len(swaps), "swaps_equal": equal, "swaps_crossing": crossing,
                           "swaps_degenbot_walk_error": walk_errors,
                           "swaps_unexplained": unexplained})  # fmt: skip

    # degenbot's profit: its chosen input through the pools' exact math (ours, equal to the pool
    # on anvil); where its own integer math says otherwise, the chain would pay ours
    theirs = [0] * len(cycles)
    peer_math_off = 0
    for i, answer in enumerate(peer["cycles"] if peer else ()):
        if answer is not None:
            amounts = path_amounts(answer["amount_in"], legs[i])
            exact = (amounts[-1] if len(amounts) == len(legs[i]) + 1 else 0) - answer["amount_in"]
            peer_math_off += exact != answer["profit_exact"]
            theirs[i] = max(0, exact)
    result.details["cycles_where_degenbot_math_differs"] = peer_math_off
    trades = [size_mixed(path, MAX_INPUT) for path in legs]
    ours = [t.profit if t else 0 for t in trades]
    for group, hops in (("2-pool", 2), ("3-pool", 3)):
        indices = [i for i, c in enumerate(cycles)
                   if len(c.hops) == hops and (ours[i] > 0 or theirs[i] > 0)]  # fmt: skip
        if not indices:
            continue
        calls = [lambda path=legs[i]: size_mixed(path, MAX_INPUT) for i in indices]
        ours_summary = summarize(_time_runs(calls, repeats))
        peer_summary = summarize(_times_of(peer["cycle_times_us"], indices)) if peer else None
        note, count_row = absent, None
        if peer:
            verdict = _verdict([ours[i] for i in indices], [theirs[i] for i in indices])
            none = sum(peer["cycles"][i] is None for i in indices)
            note = verdict_note(
                verdict,
                none,
                f"µs: median per cycle over the same {len(indices)} cycles x {repeats} runs "
                "each side",
            )
            count_row = _never_below_row(group, verdict, none, peer_name)
            result.details[f"{group} mixed"] = {
                **verdict,
                "degenbot_none": none,
                "ours_p50_us": ours_summary.p50,
                "degenbot_p50_us": peer_summary and peer_summary.p50,
                "timed_cycles": len(indices),
            }
        result.rows.append(
            Row(
                f"{group} mixed V2/V3 cycle optimum ({len(indices)} cycles)",
                "µs",
                ours_summary,
                peer_name,
                peer_summary,
                ratio(peer_summary and peer_summary.p50, ours_summary.p50),
                "degenbot/ours time",
                note,
            )
        )
        if count_row is not None:
            result.rows.append(count_row)
    return result
