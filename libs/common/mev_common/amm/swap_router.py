"""A pending SwapRouter (Uniswap V3) exact-input swap applied to copies of its pools, exactly as
the chain would run it.

Why replay SwapRouter's own steps: `exactInputSingle` and `exactInput` swap pool by pool, each
hop's input the previous hop's output, with no price limit on a multi-hop path (MIN+1 / MAX-1)
and the caller's limit on a single one; the pool stops early at that limit or where liquidity
ends, and the router pays what the pool asked. Only the final output is checked against
`amountOutMinimum`. A victim that would revert (expired deadline, an input over int256, a zero
amount, a bad price limit, too little received, a pool we do not hold) leaves no state to
trade on: None.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING

from mev_common.amm.backrun import AppliedSwap
from mev_common.amm.v2 import pair_key
from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_math import V3MathError

if TYPE_CHECKING:
    from mev_common.chain.swap_router_calls import SwapRouterSwap

MAX_INT256 = 2**255 - 1


def pool_key(token_a: str, token_b: str, fee: int) -> tuple[str, str, int]:
    """How one V3 DEX's pools are looked up: the sorted tokens and the fee tier."""
    return (*pair_key(token_a, token_b), fee)


def path_pools(swap: SwapRouterSwap, addresses: Mapping[tuple[str, str, int], str]) -> list[str]:
    """The addresses of the known pools on the swap's path (what it may move)."""
    hops = zip(pairwise(swap.tokens), swap.fees, strict=True)
    return [a for (x, y), fee in hops if (a := addresses.get(pool_key(x, y, fee))) is not None]


def apply_swap_router(
    swap: SwapRouterSwap,
    addresses: Mapping[tuple[str, str, int], str],
    pools: Mapping[str, V3Pool],
    *,
    timestamp: int | None = None,
) -> AppliedSwap | None:
    """Run `swap` through one DEX's SwapRouter on copies of its pools (`addresses`: that DEX's
    pool by `pool_key`; `pools`: V3 state by address). None if the victim would revert or a
    pool of its path is not known. `timestamp` (the victim's block) checks the deadline."""
    if timestamp is not None and swap.deadline < timestamp:
        return None  # Transaction too old
    after: dict[str, V3Pool] = {}
    amounts = [swap.amount_in]
    for (token_in, token_out), fee in zip(pairwise(swap.tokens), swap.fees, strict=True):
        address = addresses.get(pool_key(token_in, token_out, fee))
        pool = after.get(address) or pools.get(address) if address is not None else None
        if pool is None:
            return None
        if amounts[-1] > MAX_INT256:
            return None  # SafeCast.toInt256
        zero_for_one = int(token_in, 16) < int(token_out, 16)
        limit = swap.sqrt_price_limit_x96 or None  # 0: as far as the pool allows
        try:
            result = pool.swap(zero_for_one, amounts[-1], limit)
        except V3MathError:
            return None  # AS, SPL, or the math's own bounds
        after[pool.address] = pool.after_swap(result.sqrt_price_x96, result.tick, result.liquidity)
        amounts.append(-(result.amount1 if zero_for_one else result.amount0))
    if amounts[-1] < swap.amount_out_min:
        return None  # Too little received
    return AppliedSwap(tuple(amounts), after)
