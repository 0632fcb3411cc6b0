"""Scenario 5: our V2 math and cycle sizing against degenbot 0.3.0 on the same pools and cycles.

Pools are the devnet's (layout.plan_pools per seed, 18- and 6-decimal tokens: WETH, DAI, USDC,
USDT), each pushed off price by a seeded user swap; cycles are every 2- and 3-pool cycle from
WETH (cycles.find_cycles). Both sides get the same cases and the same input cap. degenbot runs in
its own venv (it pins its own web3/scipy) as a subprocess; if that venv is absent, our side still
runs and the peer's columns say so. Profit is compared exactly: degenbot's chosen input is
re-run through integer math on both sides (its own reported profit passes through a float).
Every cycle either side (or our old default) finds profitable is compared, and both sides are
timed on those same cycles. Our default, our old default (before the middle search) and, on
cycles through two 6-decimal tokens, our exact mode (gap_ppm=0, the proven optimum) run side by
side, interleaved per repeat so load on the shared cores hits each alike.
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mev_common.amm.cycles import Cycle, cycle_reserves, find_cycles
from mev_common.amm.sizing import size_trade
from mev_common.amm.v2 import V2Error, V2Pool, get_amounts_out
from mev_ops.devnet.layout import TOKENS_BY_SYMBOL, plan_pools

from bench.results import Row, ScenarioResult
from bench.stats import RunStats, ratio, run_stats, summarize, timed_passes

KEY = "amm_vs_degenbot"
TITLE = "Math and search vs degenbot 0.3.0"
BENCH_DIR = Path(__file__).resolve().parents[1]
PEER_PYTHON = BENCH_DIR / ".venv-degenbot" / "bin" / "python"
PEER_SCRIPT = BENCH_DIR / "peers" / "degenbot_side.py"
SYMBOLS = ("WETH", "USDC", "USDT", "DAI")  # 18- and 6-decimal tokens only
MAX_INPUT = 100 * 10**18  # degenbot's default cap, given to both sides
# Each call's µs per repeat is the median of PASSES timings taken in passes over all calls, with
# the garbage collector off, on both sides alike (timed once, a GC pass or a preemption inside
# one call landed in the p95: 2026-12-02 h97, PERF_HISTORY.md).
PASSES = 5
TIMING = f"each call's µs per run the median of {PASSES} passes, GC off, both sides"
# Digits-only hex addresses: the same string under any checksum, sorted the same on both sides.
TOKEN_ADDRESS = {s: "0x" + f"{1001 + i:040d}" for i, s in enumerate(SYMBOLS)}


def make_cases(seeds: int, swaps_per_pool: int) -> tuple[list[V2Pool], list[Cycle], list[Any]]:
    """Pools of `seeds` devnet layouts, each nudged by a seeded swap; every cycle (profitable
    or not: the comparison covers each one either side finds); single swaps."""
    pools: list[V2Pool] = []
    cycles: list[Cycle] = []
    swaps: list[tuple[V2Pool, str, int]] = []
    for seed in range(1, seeds + 1):
        rng = random.Random(seed * 7919)
        layout: list[V2Pool] = []
        for n, spec in enumerate(plan_pools(seed)):
            if spec.symbol_a not in SYMBOLS or spec.symbol_b not in SYMBOLS:
                continue
            a, b = TOKEN_ADDRESS[spec.symbol_a], TOKEN_ADDRESS[spec.symbol_b]
            r_a, r_b = spec.amount_a, spec.amount_b
            t0, t1, r0, r1 = (a, b, r_a, r_b) if a < b else (b, a, r_b, r_a)
            pool = V2Pool("0x" + f"{seed * 100 + n + 5000:040d}", t0, t1, r0, r1)
            side = rng.choice((t0, t1))
            nudge = int(pool.reserves(side)[0] * rng.uniform(0.002, 0.03))
            layout.append(pool.with_swap(side, nudge))
        cycles += find_cycles(layout, [TOKEN_ADDRESS["WETH"]], max_hops=3)
        for pool in layout:
            for token in (pool.token0, pool.token1):
                reserve_in = pool.reserves(token)[0]
                for _ in range(swaps_per_pool):
                    amount = int(10 ** rng.uniform(0, 1) * reserve_in // 10 ** rng.randint(1, 12))
                    swaps.append((pool, token, max(1, amount)))
        pools += layout
    return pools, cycles, swaps


def _exact_profit(amount_in: int, path: list[tuple[int, int, int]]) -> int:
    try:
        return get_amounts_out(amount_in, path)[-1] - amount_in
    except V2Error:
        return -amount_in


def _time_runs(
    calls: list[Any], repeats: int, passes: int = 1, gc_off: bool = False
) -> list[RunStats]:
    """Per-call µs of each callable (the median of `passes` timings, stats.timed_passes), once
    per repeat: one RunStats (over calls) per repeat."""
    return [run_stats(timed_passes(calls, passes, gc_off)) for _ in range(repeats)]


def _peer(pools: list[V2Pool], cycles: list[Cycle], swaps: list[Any], repeats: int) -> Any:
    """degenbot's answers, or None with the reason if its venv is not there."""
    if not PEER_PYTHON.exists():
        return None, f"degenbot venv absent ({PEER_PYTHON}): make bench creates it"
    case = {
        "tokens": [
            {"address": TOKEN_ADDRESS[s], "symbol": s, "decimals": TOKENS_BY_SYMBOL[s].decimals}
            for s in SYMBOLS
        ],
        "pools": [p._asdict() for p in pools],
        "swaps": [[p.address, t, a] for p, t, a in swaps],
        "cycles": [{"pools": list(c.pools), "input_token": c.start_token} for c in cycles],
        "max_input": MAX_INPUT,
        "repeats": repeats,
        "passes": PASSES,
        "gc_off": True,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(case, f)
    try:
        done = subprocess.run(
            [str(PEER_PYTHON), str(PEER_SCRIPT), f.name],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        Path(f.name).unlink(missing_ok=True)
    if done.returncode != 0:
        return None, f"degenbot side failed: {done.stderr.strip().splitlines()[-1:]}"
    return json.loads(done.stdout), ""


def _times_of(times_by_run: list[list[float]], indices: list[int]) -> list[RunStats]:
    """The peer's per-cycle µs of the cycles at `indices`, one RunStats per repeat."""
    return [run_stats([times[i] for i in indices]) for times in times_by_run]


# The product default, and the default before the coarse-middle search (2026-11-30), side by side;
# the exact mode only where it needs no walk (two coarse middle tokens: the middle search alone).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "old default": {"middle_search": False},
    "exact": {"gap_ppm": 0, "max_steps": 0},
}
EXACT_GROUP = "3-pool via two 6-decimal tokens"


def _verdict(ours: list[int], theirs: list[int]) -> dict[str, int]:
    """How our exact profits stand against degenbot's, cycle by cycle."""
    pairs = list(zip(ours, theirs, strict=True))
    return {
        "compared": len(pairs),
        "ahead": sum(o > t for o, t in pairs),
        "equal": sum(o == t for o, t in pairs),
        "behind": sum(o < t for o, t in pairs),
        "max_shortfall_wei": max((t - o for o, t in pairs if t > o), default=0),
        "min_margin_wei": min((o - t for o, t in pairs), default=0),
        "extra_profit_wei": sum(max(0, o - t) for o, t in pairs),
    }


def verdict_note(verdict: dict[str, int], none: int, timing: str) -> str:
    """The profit comparison as the notes of both degenbot scenarios word it."""
    return (
        f"vs degenbot on {verdict['compared']} cycles: ahead {verdict['ahead']}, equal "
        f"{verdict['equal']}, behind {verdict['behind']} (max shortfall "
        f"{verdict['max_shortfall_wei']:,} wei); degenbot found none in {none}; {timing}"
    )


def run(tiny: bool = False) -> ScenarioResult:
    seeds, swaps_per_pool, repeats = (1, 5, 2) if tiny else (24, 40, 3)
    pools, cycles, swaps = make_cases(seeds, swaps_per_pool)
    by_address = {p.address: p for p in pools}
    paths = [cycle_reserves(c, by_address) for c in cycles]
    result = ScenarioResult(KEY, TITLE)

    ours_out = [pool.amount_out(token, amount) for pool, token, amount in swaps]
    swap_runs = _time_runs(
        [lambda p=p, t=t, a=a: p.amount_out(t, a) for p, t, a in swaps], repeats, PASSES, True
    )
    peer, why_not = _peer(pools, cycles, swaps, repeats)
    peer_name = f"degenbot {peer['version']}" if peer else "degenbot"
    absent = f"peer not measured: {why_not}" if peer is None else ""

    equal = sum(a == b for a, b in zip(ours_out, peer["swaps"], strict=True)) if peer else None
    peer_swap = (
        summarize([RunStats(p50, p95, 0) for p50, p95 in peer["swap_runs_us"]]) if peer else None
    )
    swap_summary = summarize(swap_runs)
    result.rows.append(
        Row(
            f"single swap amount-out ({len(swaps)} swaps)",
            "µs",
            swap_summary,
            peer_name,
            peer_swap,
            ratio(peer_swap and peer_swap.p50, swap_summary.p50),
            "degenbot/ours time",
            f"equal to the wei: {equal}/{len(swaps)}; {TIMING}" if peer else absent,
        )
    )
    result.details["swaps_equal"] = equal
    result.details["swaps"] = len(swaps)
    theirs_all = [0] * len(cycles)  # degenbot's exact profit; 0 where it trades nothing
    for i, answer in enumerate(peer["cycles"] if peer else ()):
        if answer is not None:
            exact = _exact_profit(answer["amount_in"], paths[i])
            if exact != answer["profit_exact"]:
                raise AssertionError("degenbot's integer math disagrees with ours")
            theirs_all[i] = max(0, exact)
    profits = {
        variant: [t.profit if t else 0 for t in (size_trade(p, MAX_INPUT, **o) for p in paths)]
        for variant, o in VARIANTS.items()
    }
    decimals = {TOKEN_ADDRESS[s]: TOKENS_BY_SYMBOL[s].decimals for s in SYMBOLS}
    groups = {
        "2-pool": lambda c: len(c.hops) == 2,
        "3-pool": lambda c: len(c.hops) == 3,
        EXACT_GROUP: lambda c: (
            len(c.hops) == 3 and all(decimals[h.token_out] == 6 for h in c.hops[:2])
        ),
    }
    for group, member in groups.items():
        # Every cycle of the group that either side (or the old default) finds profitable.
        indices = [
            i
            for i, c in enumerate(cycles)
            if member(c) and (theirs_all[i] > 0 or any(v[i] > 0 for v in profits.values()))
        ]
        if not indices:
            continue
        variants = [v for v in VARIANTS if v != "exact" or group == EXACT_GROUP]
        peer_summary = summarize(_times_of(peer["cycle_times_us"], indices)) if peer else None
        calls = {
            variant: [
                lambda c=cycles[i], o=options: size_trade(
                    cycle_reserves(c, by_address), MAX_INPUT, **o
                )
                for i in indices
            ]
            for variant, options in VARIANTS.items()
            if variant in variants
        }
        runs: dict[str, list[RunStats]] = {variant: [] for variant in variants}
        for _ in range(repeats):  # interleaved, so load on the shared cores hits both alike
            for variant in variants:
                runs[variant] += _time_runs(calls[variant], 1, PASSES, True)
        for variant in variants:
            ours_summary = summarize(runs[variant])
            note = absent
            vs_exact = ""
            if "exact" in variants and variant != "exact":
                short = [profits["exact"][i] - profits[variant][i] for i in indices]
                result.details[f"{group} {variant} vs exact"] = {
                    "cycles_short": sum(d > 0 for d in short),
                    "max_short_wei": max(short),
                }
                vs_exact = (
                    f"; below the proven optimum in {sum(d > 0 for d in short)}, "
                    f"by at most {max(short):,} wei"
                )
            if peer:
                verdict = _verdict(
                    [profits[variant][i] for i in indices], [theirs_all[i] for i in indices]
                )
                none = sum(peer["cycles"][i] is None for i in indices)
                note = verdict_note(
                    verdict,
                    none,
                    f"µs: median per cycle over the same {len(indices)} cycles on both sides"
                    f" ({TIMING}){vs_exact}",
                )
                result.details[f"{group} {variant}"] = {
                    **verdict,
                    "degenbot_none": none,
                    "ours_p50_us": ours_summary.p50,
                    "degenbot_p50_us": peer_summary and peer_summary.p50,
                    "timed_cycles": len(indices),
                }
            result.rows.append(
                Row(
                    f"{group} cycle optimum, ours {variant} ({len(indices)} cycles)",
                    "µs",
                    ours_summary,
                    peer_name,
                    peer_summary,
                    ratio(peer_summary and peer_summary.p50, ours_summary.p50),
                    "degenbot/ours time",
                    note,
                )
            )
    return result
