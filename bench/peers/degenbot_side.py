"""The degenbot side of scenario 5, run by the degenbot 0.3.0 venv (bench/.venv-degenbot).

Reads the cases our side wrote (pools, swaps, cycles) from a JSON file and prints degenbot's
answers and timings as JSON. Pools are built offline: tokens without RPC, unregistered pools
with their state set by hand (see TOOLCHAIN.md). Its arbitrage profit passes through a float,
so the exact profit of its chosen input is recomputed here with its own integer pool math.
"""

from __future__ import annotations

import json
import logging
import sys
from fractions import Fraction
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench.stats: stdlib only

from degenbot.arbitrage.uniswap_lp_cycle import UniswapLpCycle
from degenbot.erc20_token import Erc20Token
from degenbot.exceptions import DegenbotError
from degenbot.uniswap.types import UniswapV2PoolState
from degenbot.uniswap.v2_liquidity_pool import UnregisteredLiquidityPool

from bench.stats import quantile, timed_passes


class OfflineToken(Erc20Token):
    """An ERC-20 with known metadata: no RPC calls at construction."""

    def __init__(self, address: str, symbol: str, decimals: int) -> None:
        self.address = address  # type: ignore[assignment,unused-ignore]  # typed in its venv
        self.symbol = symbol
        self.name = symbol
        self.decimals = decimals


def build_pools(case: dict[str, Any]) -> tuple[dict[str, OfflineToken], dict[str, Any]]:
    tokens = {
        t["address"]: OfflineToken(t["address"], t["symbol"], t["decimals"]) for t in case["tokens"]
    }
    pools = {}
    for p in case["pools"]:
        pool = UnregisteredLiquidityPool(
            p["address"],
            [tokens[p["token0"]], tokens[p["token1"]]],
            Fraction(p["fee_bps"], 10_000),
        )
        pool.name = p["address"][-6:]
        pool._state = UniswapV2PoolState(
            pool=pool.address, reserves_token0=p["reserve0"], reserves_token1=p["reserve1"]
        )
        pools[p["address"]] = pool
    return tokens, pools


def exact_profit(cycle: UniswapLpCycle, amount_in: int) -> int:
    """Profit of `amount_in` through the cycle with degenbot's integer amount-out."""
    amount = amount_in
    for pool, vector in zip(cycle.swap_pools, cycle._swap_vectors, strict=True):
        if amount <= 0:
            return -amount_in
        amount = pool.calculate_tokens_out_from_tokens_in(vector.token_in, amount)
    return amount - amount_in


def time_swaps(
    swaps: list[Any], one_swap: Any, repeats: int, passes: int = 1, gc_off: bool = False
) -> list[list[float]]:
    """[p50, p95] µs of `one_swap(*swap)` over all swaps, once per repeat (each swap's µs the
    median of `passes` timings, bench.stats.timed_passes: as our side times its own)."""
    calls = [lambda s=swap: one_swap(*s) for swap in swaps]
    runs = []
    for _ in range(repeats):
        times = timed_passes(calls, passes, gc_off)
        runs.append([quantile(times, 0.5), quantile(times, 0.95)])
    return runs


def _calculate(cycle: UniswapLpCycle) -> Any:
    """degenbot's answer for the cycle, None where it finds no profit (its error)."""
    try:
        return cycle.calculate()
    except DegenbotError:
        return None


def run_cycles(
    case: dict[str, Any], tokens: dict[str, Any], pools: dict[str, Any], exact: Any
) -> tuple[list[dict[str, Any] | None], list[list[float]]]:
    """degenbot's answer for every cycle of the case (an untimed pass first, as our side sizes
    every cycle before timing), with `exact(cycle, input)` its exact profit, and the µs of every
    cycle (found or not) per repeat: the median of the case's `passes` timings (default 1),
    with the garbage collector off if its `gc_off` says so, as our side times its own."""
    cycles = [
        UniswapLpCycle(
            input_token=tokens[c["input_token"]],
            swap_pools=[pools[a] for a in c["pools"]],
            id=str(i),
            max_input=int(case["max_input"]),
        )
        for i, c in enumerate(case["cycles"])
    ]
    answers: list[dict[str, Any] | None] = []
    for cycle in cycles:
        found = _calculate(cycle)
        answers.append(
            None
            if found is None
            else {
                "amount_in": found.input_amount,
                "profit_reported": found.profit_amount,
                "profit_exact": exact(cycle, found.input_amount),
            }
        )
    calls = [lambda c=cycle: _calculate(c) for cycle in cycles]
    passes, gc_off = int(case.get("passes", 1)), bool(case.get("gc_off", False))
    cycle_times = [timed_passes(calls, passes, gc_off) for _ in range(int(case["repeats"]))]
    return answers, cycle_times


def emit(swap_out: list[Any], swap_runs: Any, answers: Any, cycle_times: Any) -> None:
    """The answers as the scenario reads them (JSON on stdout)."""
    json.dump(
        {
            "version": version("degenbot"),
            "swaps": swap_out,
            "swap_runs_us": swap_runs,
            "cycles": answers,
            "cycle_times_us": cycle_times,
        },
        sys.stdout,
    )


def main(path: str) -> None:
    logging.disable(logging.WARNING)
    case = json.loads(Path(path).read_text())
    tokens, pools = build_pools(case)

    swaps = [(pools[p], tokens[t], amount) for p, t, amount in case["swaps"]]
    swap_out = [pool.calculate_tokens_out_from_tokens_in(t, a) for pool, t, a in swaps]
    swap_runs = time_swaps(
        swaps,
        lambda pool, t, a: pool.calculate_tokens_out_from_tokens_in(t, a),
        case["repeats"],
        int(case.get("passes", 1)),
        bool(case.get("gc_off", False)),
    )
    emit(swap_out, swap_runs, *run_cycles(case, tokens, pools, exact_profit))


if __name__ == "__main__":
    main(sys.argv[1])
