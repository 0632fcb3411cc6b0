"""Router02 swap decoding: calldata encoded here with eth-abi from the real signatures."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.chain.router_calls import (
    SIGNATURES,
    RouterCallError,
    RouterSwap,
    decode_router_call,
)

WETH = to_checksum_address("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
USDC = to_checksum_address("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
DAI = to_checksum_address("0x6b175474e89094c44da98b954eedeac495271d0f")
TO = to_checksum_address("0x000000000000000000000000000000000000bEEF")
PATH = [WETH.lower(), USDC.lower(), DAI.lower()]
DEADLINE = 1_700_000_000
TWO = ["uint256", "uint256", "address[]", "address", "uint256"]
ONE = ["uint256", "address[]", "address", "uint256"]


def calldata(signature: str, types: list[str], args: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, args)


def expected(
    kind: str,
    exact_in: bool,
    amount_in: int,
    amount_out: int,
    value: int = 0,
    *,
    eth_in: bool = False,
    eth_out: bool = False,
    fee_on_transfer: bool = False,
) -> RouterSwap:
    return RouterSwap(kind, exact_in, amount_in, amount_out, (WETH, USDC, DAI), TO, DEADLINE,
                      value, eth_in, eth_out, fee_on_transfer)  # fmt: skip


CASES = [
    (
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
        TWO, [10**18, 2_900 * 10**18], 0,
        expected("swapExactTokensForTokens", True, 10**18, 2_900 * 10**18),
    ),
    (
        "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
        TWO, [3_000 * 10**18, 2 * 10**18], 0,
        expected("swapTokensForExactTokens", False, 2 * 10**18, 3_000 * 10**18),
    ),
    (
        "swapExactETHForTokens(uint256,address[],address,uint256)",
        ONE, [2_900 * 10**18], 10**18,
        expected("swapExactETHForTokens", True, 10**18, 2_900 * 10**18, 10**18, eth_in=True),
    ),
    (
        "swapTokensForExactETH(uint256,uint256,address[],address,uint256)",
        TWO, [10**18, 3_100 * 10**18], 0,
        expected("swapTokensForExactETH", False, 3_100 * 10**18, 10**18, eth_out=True),
    ),
    (
        "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
        TWO, [3_000 * 10**18, 9 * 10**17], 0,
        expected("swapExactTokensForETH", True, 3_000 * 10**18, 9 * 10**17, eth_out=True),
    ),
    (
        "swapETHForExactTokens(uint256,address[],address,uint256)",
        ONE, [3_000 * 10**18], 11 * 10**17,
        expected("swapETHForExactTokens", False, 11 * 10**17, 3_000 * 10**18, 11 * 10**17,
                 eth_in=True),
    ),
    (
        "swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
        TWO, [10**18, 1], 0,
        expected("swapExactTokensForTokensSupportingFeeOnTransferTokens", True, 10**18, 1,
                 fee_on_transfer=True),
    ),
    (
        "swapExactETHForTokensSupportingFeeOnTransferTokens(uint256,address[],address,uint256)",
        ONE, [7], 5 * 10**17,
        expected("swapExactETHForTokensSupportingFeeOnTransferTokens", True, 5 * 10**17, 7,
                 5 * 10**17, eth_in=True, fee_on_transfer=True),
    ),
    (
        "swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
        TWO, [3_000 * 10**18, 0], 0,
        expected("swapExactTokensForETHSupportingFeeOnTransferTokens", True, 3_000 * 10**18, 0,
                 eth_out=True, fee_on_transfer=True),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("signature", "types", "amounts", "value", "want"), CASES)
def test_every_swap_variant_decodes(
    signature: str, types: list[str], amounts: list[int], value: int, want: RouterSwap
) -> None:
    data = calldata(signature, types, [*amounts, PATH, TO.lower(), DEADLINE])
    assert decode_router_call(data, value) == want
    assert decode_router_call("0x" + data.hex(), value) == want
    assert SIGNATURES[want.kind] == signature


def test_all_nine_selectors_are_the_router02_ones() -> None:
    selectors = {
        function_signature_to_4byte_selector(signature).hex() for signature in SIGNATURES.values()
    }
    # Published Router02 selectors.
    assert selectors == {
        "38ed1739", "8803dbee", "7ff36ab5", "4a25d94a", "18cbafe5", "fb3bdb41",
        "5c11d795", "b6f9de95", "791ac947",
    }  # fmt: skip


def test_limits_read_by_their_solidity_names() -> None:
    swap = decode_router_call(calldata(CASES[1][0], TWO, [5, 9, PATH, TO, 1]))
    assert swap is not None and swap.amount_out == 5 and swap.amount_in_max == 9
    swap = decode_router_call(calldata(CASES[0][0], TWO, [9, 5, PATH, TO, 1]))
    assert swap is not None and swap.amount_in == 9 and swap.amount_out_min == 5


def test_other_calls_are_not_swaps() -> None:
    add_liquidity = calldata(
        "addLiquidityETH(address,uint256,uint256,uint256,address,uint256)",
        ["address", "uint256", "uint256", "uint256", "address", "uint256"],
        [DAI, 1, 1, 1, TO, 1],
    )
    assert decode_router_call(add_liquidity) is None
    assert decode_router_call(b"") is None
    assert decode_router_call("0x38ed17") is None


def test_a_swap_selector_with_broken_arguments_raises() -> None:
    good = calldata(CASES[0][0], TWO, [1, 1, PATH, TO, DEADLINE])
    with pytest.raises(RouterCallError, match="swapExactTokensForTokens"):
        decode_router_call(good[:-40])
    with pytest.raises(RouterCallError):
        decode_router_call("0xzz")
