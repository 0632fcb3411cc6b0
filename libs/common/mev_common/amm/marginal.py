"""A cycle's marginal rate at zero input, from a per-hop cache: the exact test that lets a
search skip a cycle no input can profit on without building its sizing state.

Why: a block's search prices every cycle through the pools the block changed, and with V3
pools one pool is in hundreds of cycles. For a cycle through a V3 pool the profit bound
(mixed_sizing.continuous_optimum) builds each hop's range state (sorted ticks, range ends,
amount deltas: ~25 µs a cycle, ~900 cycles a devnet block) only to find, for most cycles, that
the composed rate at x = 0 is at most 1, where it returns (0, 0). The same integers per hop
and direction are the same in every cycle of one search, so they are computed once per hop:
the cycle's test is then 2-3 multiplications, with the same verdict.
"""

from __future__ import annotations

from mev_common.amm.v2 import FEE_DENOMINATOR as V2_FEE_DENOMINATOR
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_math import FEE_DENOMINATOR as V3_FEE_DENOMINATOR

Rate = tuple[int, int]  # (numerator, denominator) of a hop's output per input at x = 0


def hop_rate(pool: V2Pool | V3Pool, token_in: str) -> Rate | None:
    """The first piece of continuous_optimum's walk as (g*r_out, r_in*g_den): for a V3 pool,
    its current range's virtual reserves (as mixed_sizing._Piece._enter computes them). None
    for a V3 pool with no liquidity at its price (the walk crosses empty ranges first)."""
    if isinstance(pool, V3Pool):
        liquidity, sqrt_price = pool.liquidity, pool.sqrt_price_x96
        if liquidity <= 0:
            return None
        g_num, g_den = V3_FEE_DENOMINATOR - pool.fee, V3_FEE_DENOMINATOR
        if token_in == pool.token0:  # zero_for_one
            r_in, r_out = (liquidity << 96) // sqrt_price, liquidity * sqrt_price >> 96
        else:
            r_in, r_out = liquidity * sqrt_price >> 96, (liquidity << 96) // sqrt_price
        return g_num * r_out, r_in * g_den
    reserve_in, reserve_out = pool.reserves(token_in)
    return (V2_FEE_DENOMINATOR - pool.fee_bps) * reserve_out, reserve_in * V2_FEE_DENOMINATOR


def no_input_profits(rates: list[Rate | None]) -> bool:
    """True when the composed rate at x = 0 is at most 1 (continuous_optimum's first test):
    the curve is concave, so no input profits. False when unsure (a hop without a rate)."""
    a_acc = b_acc = 1
    for rate in rates:
        if rate is None:
            return False
        a_acc, b_acc = a_acc * rate[0], b_acc * rate[1]
    return a_acc <= b_acc
