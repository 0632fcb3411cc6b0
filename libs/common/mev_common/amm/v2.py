"""Uniswap V2 constant-product math, wei-identical to UniswapV2Library and UniswapV2Pair.

Why integers only: a plan that differs by one wei from what the pair computes either reverts
(the pair's K check) or leaves profit behind, so every amount is the contract's own integer
expression, and every revert the contract would raise is a `V2Error` carrying its reason.
A DEX fork with another fee is the same formula with (10000 - fee_bps) / 10000; for 30 bps
that equals the 997 / 1000 of the original contracts exactly (both sides scale by 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

FEE_DENOMINATOR = 10_000
DEFAULT_FEE_BPS = 30
MAX_UINT256 = 2**256 - 1
MAX_UINT112 = 2**112 - 1


class V2Error(ValueError):
    """A revert of the V2 contracts; `str(error)` is the contract's reason string."""


def get_amount_out(
    amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int = DEFAULT_FEE_BPS
) -> int:
    """UniswapV2Library.getAmountOut: what the pair pays for `amount_in`."""
    if amount_in <= 0:
        raise V2Error("UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise V2Error("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    amount_in_with_fee = amount_in * (FEE_DENOMINATOR - fee_bps)
    numerator = amount_in_with_fee * reserve_out
    if numerator > MAX_UINT256:
        raise V2Error("ds-math-mul-overflow")
    return numerator // (reserve_in * FEE_DENOMINATOR + amount_in_with_fee)


def get_amount_in(
    amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = DEFAULT_FEE_BPS
) -> int:
    """UniswapV2Library.getAmountIn: the router's input for `amount_out`, rounded up (+1).

    The library adds 1 even when the division is exact, so this can be one wei more than the
    least sufficient input; `min_amount_in` gives that least input for sizing.
    """
    if amount_out <= 0:
        raise V2Error("UniswapV2Library: INSUFFICIENT_OUTPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise V2Error("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    if amount_out > reserve_out:
        raise V2Error("ds-math-sub-underflow")
    if amount_out == reserve_out:
        # Solidity divides by zero here: a bare revert (Panic in 0.8, INVALID in 0.6).
        raise V2Error("division by zero")
    numerator = reserve_in * amount_out * FEE_DENOMINATOR
    if numerator > MAX_UINT256:
        raise V2Error("ds-math-mul-overflow")
    return numerator // ((reserve_out - amount_out) * (FEE_DENOMINATOR - fee_bps)) + 1


def min_amount_in(
    amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = DEFAULT_FEE_BPS
) -> int | None:
    """Least input whose `get_amount_out` is at least `amount_out`; None if none is.

    Why: between two such inputs the output is flat, so profit is best at the least one; with a
    6-decimal token in the path those flats are ~1e8 wei wide.
    """
    if amount_out <= 0:
        return 0
    if amount_out >= reserve_out:
        return None
    gamma = FEE_DENOMINATOR - fee_bps
    # out(x) >= y  <=>  x*gamma*(R_out - y) >= y*R_in*D  (both sides integers, no rounding).
    numerator = amount_out * reserve_in * FEE_DENOMINATOR
    denominator = gamma * (reserve_out - amount_out)
    return -(-numerator // denominator)


def get_amounts_out(amount_in: int, path_reserves: Sequence[tuple[int, int, int]]) -> list[int]:
    """UniswapV2Library.getAmountsOut over (reserve_in, reserve_out, fee_bps) per hop.

    Returns [amount_in, out_1, ..., out_n] like the library; raises its reverts.
    """
    amounts = [amount_in]
    for reserve_in, reserve_out, fee_bps in path_reserves:
        amounts.append(get_amount_out(amounts[-1], reserve_in, reserve_out, fee_bps))
    return amounts


def get_amounts_in(amount_out: int, path_reserves: Sequence[tuple[int, int, int]]) -> list[int]:
    """UniswapV2Library.getAmountsIn: [in, ..., amount_out], computed from the last hop back."""
    amounts = [amount_out]
    for reserve_in, reserve_out, fee_bps in reversed(path_reserves):
        amounts.append(get_amount_in(amounts[-1], reserve_in, reserve_out, fee_bps))
    amounts.reverse()
    return amounts


def k_holds(
    reserve_in: int,
    reserve_out: int,
    amount_in: int,
    amount_out: int,
    fee_bps: int = DEFAULT_FEE_BPS,
) -> bool:
    """UniswapV2Pair.swap's invariant check for a plain swap (input side in, other side out).

    Why separate from get_amount_out: a router may compute amounts with a fee other than the
    pair's (a fork router, or the same pair twice in one path), and the pair alone decides.
    """
    balance_in = reserve_in + amount_in
    balance_out = reserve_out - amount_out
    adjusted_in = balance_in * FEE_DENOMINATOR - amount_in * fee_bps
    return adjusted_in * balance_out * FEE_DENOMINATOR >= (
        reserve_in * reserve_out * FEE_DENOMINATOR**2
    )


def pair_key(token_a: str, token_b: str) -> tuple[str, str]:
    """The pair's (token0, token1): sorted by address value, as the factory sorts them."""
    return (token_a, token_b) if token_a.lower() < token_b.lower() else (token_b, token_a)


class V2Pool(NamedTuple):
    """One pair's state at a point in time; immutable, so a hypothetical swap is a new value.

    Addresses are compared as given: use one spelling (checksummed, as messages carry them).
    """

    address: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int
    fee_bps: int = DEFAULT_FEE_BPS

    def reserves(self, token_in: str) -> tuple[int, int]:
        """(reserve_in, reserve_out) for a swap that sells `token_in`."""
        if token_in == self.token0:
            return self.reserve0, self.reserve1
        if token_in == self.token1:
            return self.reserve1, self.reserve0
        raise KeyError(f"{token_in} is not a token of pool {self.address}")

    def other(self, token: str) -> str:
        """The pool's token that is not `token`."""
        if token == self.token0:
            return self.token1
        if token == self.token1:
            return self.token0
        raise KeyError(f"{token} is not a token of pool {self.address}")

    def amount_out(self, token_in: str, amount_in: int) -> int:
        """What this pool pays for `amount_in` of `token_in`, at its own fee."""
        reserve_in, reserve_out = self.reserves(token_in)
        return get_amount_out(amount_in, reserve_in, reserve_out, self.fee_bps)

    def with_amounts(self, token_in: str, amount_in: int, amount_out: int) -> V2Pool:
        """The pool after `amount_in` of `token_in` came in and `amount_out` went out."""
        if token_in == self.token0:
            return self._replace(
                reserve0=self.reserve0 + amount_in, reserve1=self.reserve1 - amount_out
            )
        if token_in == self.token1:
            return self._replace(
                reserve0=self.reserve0 - amount_out, reserve1=self.reserve1 + amount_in
            )
        raise KeyError(f"{token_in} is not a token of pool {self.address}")

    def with_swap(self, token_in: str, amount_in: int) -> V2Pool:
        """The pool after an exact-input swap of `amount_in` of `token_in` at its own fee."""
        return self.with_amounts(token_in, amount_in, self.amount_out(token_in, amount_in))
