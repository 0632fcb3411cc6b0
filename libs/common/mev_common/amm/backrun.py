"""A pending Router02 swap applied to copies of the pools, exactly as the chain would run it.

Why replay the router's own order of work: the router computes every amount from the reserves
before the first swap (getAmountsOut / getAmountsIn), checks the sender's limit, and only then
swaps pair by pair, each pair checking its own invariant at its own fee. A backrun is sized on the
state after that, so a victim that would revert (slippage, deadline, bad path) leaves no state
to trade on: None. Tokens are assumed to take no fee on transfer (detect deny-lists those);
for plain tokens the *SupportingFeeOnTransferTokens variants move the same amounts hop by hop.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, NamedTuple

from mev_common.amm.v2 import (
    DEFAULT_FEE_BPS,
    MAX_UINT112,
    V2Error,
    V2Pool,
    get_amount_out,
    get_amounts_in,
    get_amounts_out,
    k_holds,
    pair_key,
)
from mev_common.amm.v3 import V3Pool

if TYPE_CHECKING:
    from mev_common.chain.router_calls import RouterSwap


class AppliedSwap(NamedTuple):
    """The victim's amounts ([input, out of each hop]) and every pool it touched, after."""

    amounts: tuple[int, ...]
    pools: Mapping[str, V2Pool | V3Pool]  # V2 pairs after a Router02 swap, V3 after SwapRouter


def apply_router_swap(
    swap: RouterSwap,
    pools_by_pair: Mapping[tuple[str, str], V2Pool],
    fee_bps: int = DEFAULT_FEE_BPS,
    *,
    timestamp: int | None = None,
    weth: str | None = None,
) -> AppliedSwap | None:
    """Run `swap` through the router of one DEX (whose library fee is `fee_bps`) on copies of
    the pools, keyed by `pair_key(token_a, token_b)`. None if the victim transaction would
    revert, or if a pool of its path is not known.

    `timestamp` (the block the victim lands in) checks the deadline; `weth` checks the ETH
    variants' path ends, as the router's INVALID_PATH does.
    """
    path = swap.path
    if len(path) < 2 or (timestamp is not None and swap.deadline < timestamp):
        return None  # INVALID_PATH, EXPIRED
    if swap.value and not swap.eth_in:
        return None  # a non-payable function called with value
    if weth is not None and (
        (swap.eth_in and path[0] != weth) or (swap.eth_out and path[-1] != weth)
    ):
        return None
    try:
        pools = [pools_by_pair[pair_key(a, b)] for a, b in pairwise(path)]
    except KeyError:
        return None
    try:
        if swap.fee_on_transfer:
            return _apply_hop_by_hop(swap, pools, fee_bps)
        reserves = [
            (*pool.reserves(token), fee_bps) for pool, token in zip(pools, path, strict=False)
        ]
        if swap.exact_in:
            amounts = get_amounts_out(swap.amount_in, reserves)
            if amounts[-1] < swap.amount_out:
                return None  # UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT
        else:
            amounts = get_amounts_in(swap.amount_out, reserves)
            if amounts[0] > swap.amount_in:
                return None  # UniswapV2Router: EXCESSIVE_INPUT_AMOUNT
    except V2Error:
        return None
    after: dict[str, V2Pool] = {}
    for i, pool in enumerate(pools):
        moved = _pair_swap(after.get(pool.address, pool), path[i], amounts[i], amounts[i + 1])
        if moved is None:
            return None
        after[pool.address] = moved
    return AppliedSwap(tuple(amounts), after)


def _apply_hop_by_hop(swap: RouterSwap, pools: list[V2Pool], fee_bps: int) -> AppliedSwap | None:
    """The fee-on-transfer variants: each hop's amount from the reserves as they are by then."""
    amounts = [swap.amount_in]
    after: dict[str, V2Pool] = {}
    for pool, token_in in zip(pools, swap.path, strict=False):
        current = after.get(pool.address, pool)
        reserve_in, reserve_out = current.reserves(token_in)
        amount_out = get_amount_out(amounts[-1], reserve_in, reserve_out, fee_bps)
        moved = _pair_swap(current, token_in, amounts[-1], amount_out)
        if moved is None:
            return None
        after[pool.address] = moved
        amounts.append(amount_out)
    if amounts[-1] < swap.amount_out:
        return None  # UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT
    return AppliedSwap(tuple(amounts), after)


def _pair_swap(pool: V2Pool, token_in: str, amount_in: int, amount_out: int) -> V2Pool | None:
    """UniswapV2Pair.swap's checks and reserve update; None where the pair would revert."""
    reserve_in, reserve_out = pool.reserves(token_in)
    if amount_out <= 0 or amount_out >= reserve_out or amount_in <= 0:
        return None  # INSUFFICIENT_OUTPUT_AMOUNT, INSUFFICIENT_LIQUIDITY, INSUFFICIENT_INPUT_AMOUNT
    if reserve_in + amount_in > MAX_UINT112:
        return None  # UniswapV2: OVERFLOW
    if not k_holds(reserve_in, reserve_out, amount_in, amount_out, pool.fee_bps):
        return None  # UniswapV2: K
    return pool.with_amounts(token_in, amount_in, amount_out)
