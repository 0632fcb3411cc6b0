"""The degenbot side of the V3 scenario (amm_v3_peer), run by the degenbot 0.3.0 venv.

Reads the cases our side wrote (V2 and V3 pools, V3 swaps, mixed cycles) and prints degenbot's
answers and timings as JSON. V3 pools are built offline like the V2 ones (degenbot_side.py): no
RPC, the whole tick map given (so degenbot walks the complete liquidity map, word boundaries
included, as the pool does). Its arbitrage profit passes through a float, so the exact profit of
its chosen input is recomputed here with its own integer pool math; an input some V3 pool cannot
take whole (IncompleteSwap) earns nothing.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from threading import Lock
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench.stats: stdlib only
sys.path.insert(0, str(Path(__file__).resolve().parent))

from degenbot.arbitrage.uniswap_lp_cycle import UniswapLpCycle
from degenbot.exceptions import DegenbotError
from degenbot.uniswap.types import (
    UniswapV3BitmapAtWord,
    UniswapV3LiquidityAtTick,
    UniswapV3PoolState,
)
from degenbot.uniswap.v3_liquidity_pool import UniswapV3Pool
from degenbot_side import build_pools, emit, run_cycles, time_swaps


def build_v3(p: dict[str, Any], tokens: dict[str, Any]) -> UniswapV3Pool:
    """A V3 pool with its state set by hand (the constructor would read the chain)."""
    pool = object.__new__(UniswapV3Pool)
    pool.address = p["address"]
    pool._chain_id = 1
    pool._update_block = 1
    pool._state_lock = Lock()
    pool._subscribers = set()
    pool.token0, pool.token1 = tokens[p["token0"]], tokens[p["token1"]]
    pool.fee, pool.tick_spacing = p["fee"], p["tick_spacing"]
    pool.sparse_liquidity_map = False
    pool.name = p["address"][-6:]
    pool._state = UniswapV3PoolState(
        pool=pool.address,
        liquidity=p["liquidity"],
        sqrt_price_x96=p["sqrt_price_x96"],
        tick=p["tick"],
        tick_bitmap={int(w): UniswapV3BitmapAtWord(bitmap=b) for w, b in p["bitmap"].items()},
        tick_data={
            int(t): UniswapV3LiquidityAtTick(liquidity_net=net, liquidity_gross=gross)
            for t, (gross, net) in p["ticks"].items()
        },
    )
    return pool


def exact_profit(cycle: UniswapLpCycle, amount_in: int) -> int:
    """Profit of `amount_in` through the cycle with degenbot's integer amount-out."""
    amount = amount_in
    for pool, vector in zip(cycle.swap_pools, cycle._swap_vectors, strict=True):
        if amount <= 0:
            return -amount_in
        try:
            amount = pool.calculate_tokens_out_from_tokens_in(vector.token_in, amount)
        except DegenbotError:  # IncompleteSwap: the pool would not take the whole input
            return -amount_in
    return amount - amount_in


def main(path: str) -> None:
    logging.disable(logging.WARNING)
    case = json.loads(Path(path).read_text())
    tokens, pools = build_pools(case)
    for p in case["v3_pools"]:
        pools[p["address"]] = build_v3(p, tokens)

    swaps = [(pools[p], tokens[t], amount) for p, t, amount in case["swaps"]]

    def one_swap(pool: Any, token: Any, amount: int) -> int | None:
        try:
            return int(pool.calculate_tokens_out_from_tokens_in(token, amount))
        except DegenbotError:
            return None

    swap_out = [one_swap(*s) for s in swaps]
    swap_runs = time_swaps(swaps, one_swap, int(case["repeats"]))
    emit(swap_out, swap_runs, *run_cycles(case, tokens, pools, exact_profit))


if __name__ == "__main__":
    main(sys.argv[1])
