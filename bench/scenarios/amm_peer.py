"""Scenario 5: our V2 math and cycle sizing against degenbot 0.3.0 on the same pools and cycles.

Pools are the devnet's (layout.plan_pools per seed, 18- and 6-decimal tokens: WETH, DAI, USDC,
USDT), each pushed off price by a seeded user swap; cycles are every 2- and 3-pool cycle from
WETH (cycles.find_cycles). Both sides get the same cases and the same input cap. degenbot runs in
its own venv (it pins its own web3/scipy) as a subprocess; if that venv is absent, our side still
runs and the peer's columns say so. Profit is compared exactly: degenbot's chosen input is
re-run through integer math on both sides (its own reported profit passes through a float).
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from mev_common.amm.cycles import Cycle, cycle_reserves, find_cycles
from mev_common.amm.sizing import profit_bound, size_trade
from mev_common.amm.v2 import V2Error, V2Pool, get_amounts_out
from mev_common.devnet.layout import TOKENS_BY_SYMBOL, plan_pools

from bench.results import Row, ScenarioResult
from bench.stats import RunStats, Summary, quantile, ratio, summarize

KEY = "amm_vs_degenbot"
TITLE = "Math and search vs degenbot 0.3.0"
BENCH_DIR = Path(__file__).resolve().parents[1]
PEER_PYTHON = BENCH_DIR / ".venv-degenbot" / "bin" / "python"
PEER_SCRIPT = BENCH_DIR / "peers" / "degenbot_side.py"
SYMBOLS = ("WETH", "USDC", "USDT", "DAI")  # 18- and 6-decimal tokens only
MAX_INPUT = 100 * 10**18  # degenbot's default cap, given to both sides
# Digits-only hex addresses: the same string under any checksum, sorted the same on both sides.
TOKEN_ADDRESS = {s: "0x" + f"{1001 + i:040d}" for i, s in enumerate(SYMBOLS)}


def make_cases(seeds: int, swaps_per_pool: int) -> tuple[list[V2Pool], list[Cycle], list[Any]]:
    """Pools of `seeds` devnet layouts, each nudged by a seeded swap; cycles; single swaps."""
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
        by_address = {p.address: p for p in layout}
        for cycle in find_cycles(layout, [TOKEN_ADDRESS["WETH"]], max_hops=3):
            if profit_bound(cycle_reserves(cycle, by_address), MAX_INPUT) > 0:
                cycles.append(cycle)
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


def _time_runs(calls: list[Any], repeats: int) -> list[RunStats]:
    """Per-call µs of each callable, once per repeat: one RunStats (over calls) per repeat."""
    runs = []
    for _ in range(repeats):
        times = []
        for call in calls:
            started = time.perf_counter_ns()
            call()
            times.append((time.perf_counter_ns() - started) / 1e3)
        runs.append(RunStats(quantile(times, 0.5), quantile(times, 0.95), len(times)))
    return runs


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


def _peer_summary(runs: list[list[float]] | None) -> Summary | None:
    if not runs:
        return None
    return summarize([RunStats(p50, p95, 0) for p50, p95 in runs])


# Product defaults stop within 100 ppm of the proven bound; the exact variant walks to the optimum.
VARIANTS: dict[str, dict[str, int]] = {
    "defaults": {},
    "exact": {"gap_ppm": 0, "max_steps": 1_000},
}


def _compare(ours: list[int], theirs: list[int]) -> tuple[int, int, int]:
    """(ours >= theirs count, ours > theirs count, total extra units where ours is better)."""
    pairs = list(zip(ours, theirs, strict=True))
    return (
        sum(o >= t for o, t in pairs),
        sum(o > t for o, t in pairs),
        sum(max(0, o - t) for o, t in pairs),
    )


def run(tiny: bool = False) -> ScenarioResult:
    seeds, swaps_per_pool, repeats = (1, 5, 2) if tiny else (24, 40, 3)
    pools, cycles, swaps = make_cases(seeds, swaps_per_pool)
    by_address = {p.address: p for p in pools}
    paths = [cycle_reserves(c, by_address) for c in cycles]
    result = ScenarioResult(KEY, TITLE)

    ours_out = [pool.amount_out(token, amount) for pool, token, amount in swaps]
    swap_runs = _time_runs([lambda p=p, t=t, a=a: p.amount_out(t, a) for p, t, a in swaps], repeats)
    peer, why_not = _peer(pools, cycles, swaps, repeats)
    peer_name = f"degenbot {peer['version']}" if peer else "degenbot"
    absent = f"peer not measured: {why_not}" if peer is None else ""

    equal = sum(a == b for a, b in zip(ours_out, peer["swaps"], strict=True)) if peer else None
    swap_summary, peer_swap = summarize(swap_runs), _peer_summary(peer and peer["swap_runs_us"])
    result.rows.append(
        Row(
            f"single swap amount-out ({len(swaps)} swaps)",
            "µs",
            swap_summary,
            peer_name,
            peer_swap,
            ratio(peer_swap and peer_swap.p50, swap_summary.p50),
            "degenbot/ours time",
            f"equal to the wei: {equal}/{len(swaps)}" if peer else absent,
        )
    )
    result.details["swaps_equal"] = equal
    result.details["swaps"] = len(swaps)
    theirs_all: list[int] = []
    if peer:
        for i, answer in enumerate(peer["cycles"]):
            theirs = 0 if answer is None else _exact_profit(answer["amount_in"], paths[i])
            if answer is not None and theirs != answer["profit_exact"]:
                raise AssertionError("degenbot's integer math disagrees with ours")
            theirs_all.append(theirs)
    for hops in (2, 3):
        indices = [i for i, c in enumerate(cycles) if len(c.hops) == hops]
        if not indices:
            continue
        peer_summary = _peer_summary(peer and peer["cycle_runs_us"].get(str(hops)))
        for variant, options in VARIANTS.items():
            runs = _time_runs(
                [
                    lambda c=cycles[i], o=options: size_trade(
                        cycle_reserves(c, by_address), MAX_INPUT, **o
                    )
                    for i in indices
                ],
                repeats,
            )
            trades = [size_trade(paths[i], MAX_INPUT, **options) for i in indices]
            ours_profit = [t.profit if t else 0 for t in trades]
            note = absent
            if peer:
                theirs = [theirs_all[i] for i in indices]
                at_least, better, extra = _compare(ours_profit, theirs)
                none = sum(peer["cycles"][i] is None for i in indices)
                note = (
                    f"ours ≥ degenbot in {at_least}/{len(indices)}, strictly better in {better} "
                    f"(+{extra:,} units in all); degenbot found none in {none}"
                )
                result.details[f"{hops}_pool_{variant}"] = {
                    "cycles": len(indices),
                    "ours_at_least": at_least,
                    "ours_strictly_better": better,
                    "extra_profit_units": extra,
                    "ours_short_units": sum(
                        max(0, t - o) for o, t in zip(ours_profit, theirs, strict=True)
                    ),
                    "degenbot_none": none,
                }
            ours_summary = summarize(runs)
            label = "defaults, 100 ppm gap" if variant == "defaults" else "gap 0, 1,000 steps"
            result.rows.append(
                Row(
                    f"{hops}-pool cycle optimum, ours {label} ({len(indices)} cycles)",
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
