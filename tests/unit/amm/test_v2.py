"""V2 math against a line-by-line transcription of UniswapV2Library and fixed golden values."""

from __future__ import annotations

import random

import pytest
from mev_common.amm.v2 import (
    V2Error,
    V2Pool,
    get_amount_in,
    get_amount_out,
    get_amounts_in,
    get_amounts_out,
    k_holds,
    min_amount_in,
    pair_key,
)

E18 = 10**18
USDC = 10**6


def solidity_amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """UniswapV2Library.getAmountOut as written in Solidity (997/1000)."""
    amount_in_with_fee = amount_in * 997
    numerator = amount_in_with_fee * reserve_out
    denominator = reserve_in * 1000 + amount_in_with_fee
    return numerator // denominator


def solidity_amount_in(amount_out: int, reserve_in: int, reserve_out: int) -> int:
    """UniswapV2Library.getAmountIn as written in Solidity (997/1000)."""
    numerator = reserve_in * amount_out * 1000
    denominator = (reserve_out - amount_out) * 997
    return numerator // denominator + 1


def test_golden_values() -> None:
    assert get_amount_out(E18, 100 * E18, 200 * E18) == 1974316068794122597
    assert get_amount_in(E18, 100 * E18, 200 * E18) == 504024636724243082
    # 1 gwei of WETH into a 5,000 WETH / 15M USDC pool buys 2 micro-USDC.
    assert get_amount_out(10**9, 5_000 * E18, 15_000_000 * USDC) == 2
    assert get_amount_out(USDC, 15_000_000 * USDC, 5_000 * E18, 25) == 332499977888751
    path = [(100 * E18, 300_000 * USDC, 30), (200_000 * USDC, 70 * E18, 30)]
    assert get_amounts_out(E18, path) == [E18, 2961474103, 1018372211823191872]
    assert get_amounts_in(E18, path) == [981518675928038784, 2907272543, E18]


def test_matches_solidity_formula_for_30_bps_over_random_cases() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        reserve_in = rng.randint(1, 2**112 - 1) >> rng.randint(0, 100)
        reserve_out = rng.randint(1, 2**112 - 1) >> rng.randint(0, 100)
        reserve_in, reserve_out = max(reserve_in, 1), max(reserve_out, 2)
        amount_in = max(1, rng.randint(1, reserve_in * 3) >> rng.randint(0, 40))
        assert get_amount_out(amount_in, reserve_in, reserve_out) == solidity_amount_out(
            amount_in, reserve_in, reserve_out
        )
        amount_out = rng.randint(1, reserve_out - 1)
        assert get_amount_in(amount_out, reserve_in, reserve_out) == solidity_amount_in(
            amount_out, reserve_in, reserve_out
        )


def test_other_fees_use_the_bps_formula() -> None:
    # PancakeSwap-style 25 bps: 9975 / 10000.
    assert get_amount_out(1000, 10_000, 10_000, 25) == 1000 * 9975 * 10_000 // (
        10_000 * 10_000 + 1000 * 9975
    )
    assert get_amount_out(1000, 10_000, 10_000, 0) == 909
    assert get_amount_in(909, 10_000, 10_000, 0) == 1000


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: get_amount_out(0, 10, 10), "UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT"),
        (lambda: get_amount_out(1, 0, 10), "UniswapV2Library: INSUFFICIENT_LIQUIDITY"),
        (lambda: get_amount_out(1, 10, 0), "UniswapV2Library: INSUFFICIENT_LIQUIDITY"),
        (lambda: get_amount_in(0, 10, 10), "UniswapV2Library: INSUFFICIENT_OUTPUT_AMOUNT"),
        (lambda: get_amount_in(1, 0, 10), "UniswapV2Library: INSUFFICIENT_LIQUIDITY"),
        (lambda: get_amount_in(11, 10, 10), "ds-math-sub-underflow"),
        (lambda: get_amount_in(10, 10, 10), "division by zero"),
        (lambda: get_amount_out(2**250, 10, 2**100), "ds-math-mul-overflow"),
        (lambda: get_amounts_out(1, [(1000, 10, 30), (10**9, 10**9, 30)]), "INSUFFICIENT_INPUT"),
    ],
)
def test_reverts_carry_the_contract_reason(call, reason: str) -> None:
    with pytest.raises(V2Error, match=reason):
        call()


def test_min_amount_in_is_the_least_sufficient_input() -> None:
    rng = random.Random(9)
    for _ in range(2000):
        reserve_in, reserve_out = rng.randint(1, 10**6), rng.randint(2, 10**6)
        fee = rng.choice([0, 5, 25, 30, 100])
        amount_out = rng.randint(1, reserve_out - 1)
        least = min_amount_in(amount_out, reserve_in, reserve_out, fee)
        assert least is not None
        assert get_amount_out(least, reserve_in, reserve_out, fee) >= amount_out
        if least > 1:
            assert get_amount_out(least - 1, reserve_in, reserve_out, fee) < amount_out
    assert min_amount_in(10, 5, 10) is None
    # The library's +1 overshoots when the division is exact: 1000*10000 / (10000*1) = 1000.
    assert get_amount_in(1, 1000, 2, 0) == 1001
    assert min_amount_in(1, 1000, 2, 0) == 1000


def test_k_check_accepts_library_amounts_and_rejects_one_wei_more() -> None:
    rng = random.Random(3)
    for _ in range(500):
        reserve_in, reserve_out = rng.randint(10, 10**24), rng.randint(10, 10**24)
        fee = rng.choice([25, 30])
        amount_in = rng.randint(1, reserve_in)
        out = get_amount_out(amount_in, reserve_in, reserve_out, fee)
        assert k_holds(reserve_in, reserve_out, amount_in, out, fee)
        assert not k_holds(reserve_in, reserve_out, amount_in, out + 1, fee) or out == 0


def test_pool_reserves_and_swaps_are_immutable() -> None:
    pool = V2Pool("0xP", "0xA", "0xB", 100 * E18, 200 * E18)
    assert pool.reserves("0xA") == (100 * E18, 200 * E18)
    assert pool.reserves("0xB") == (200 * E18, 100 * E18)
    assert pool.other("0xA") == "0xB"
    after = pool.with_swap("0xA", E18)
    assert after == V2Pool("0xP", "0xA", "0xB", 101 * E18, 200 * E18 - 1974316068794122597)
    assert pool.reserve0 == 100 * E18
    back = after.with_swap("0xB", 10**15)
    assert back.reserve1 == after.reserve1 + 10**15
    assert back.reserve0 == after.reserve0 - get_amount_out(10**15, after.reserve1, after.reserve0)
    with pytest.raises(KeyError):
        pool.reserves("0xC")


def test_pair_key_sorts_by_address_value() -> None:
    low, high = (
        "0x00000000000000000000000000000000000000aB",
        "0xC000000000000000000000000000000000000000",
    )
    assert pair_key(high, low) == (low, high) == pair_key(low, high)
