"""Router02 swap decoding: calldata encoded here with eth-abi from the real signatures."""

from __future__ import annotations

import random
import timeit

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


def _eth_abi_reference(data: bytes, value: int) -> RouterSwap | str | None:
    """What the decoder returned before the hand path: eth-abi's decode, shaped the same way."""
    from eth_abi import decode
    from eth_abi.exceptions import DecodingError
    from mev_common.chain import router_calls as rc

    variant = rc._BY_SELECTOR.get(data[:4])
    if variant is None:
        return None
    try:
        args = decode(ONE if variant.eth_in else TWO, data[4:])
    except (DecodingError, ValueError, OverflowError):
        return "error"
    if variant.eth_in:
        amount_in, (amount_out, path, to, deadline) = value, args
    else:
        first, second, path, to, deadline = args
        amount_in, amount_out = (first, second) if variant.exact_in else (second, first)
    return RouterSwap(variant.kind, variant.exact_in, amount_in, amount_out,
                      tuple(to_checksum_address(t) for t in path), to_checksum_address(to),
                      deadline, value, variant.eth_in, variant.eth_out,
                      variant.fee_on_transfer)  # fmt: skip


def _mangle(rng: random.Random, data: bytes) -> bytes:
    """One of the ways calldata can leave the canonical layout (or stay in it)."""
    choice = rng.randrange(8)
    body = bytearray(data)
    if choice == 0 and len(body) > 4:  # truncate anywhere
        return bytes(body[: rng.randrange(4, len(body))])
    if choice == 1:  # trailing junk
        return bytes(body) + rng.randbytes(rng.randrange(1, 70))
    if choice == 2 and len(body) > 36:  # flip one byte of the arguments (padding, offset, ...)
        at = rng.randrange(4, len(body))
        body[at] ^= 1 << rng.randrange(8)
        return bytes(body)
    if choice == 3:  # a non-canonical path offset: the path moved one word further
        head = 32 * (4 if data[:4] in _ETH_IN else 5)
        offset_at = 4 + head - 96
        body[offset_at : offset_at + 32] = (head + 32).to_bytes(32, "big")
        return bytes(body[: 4 + head]) + bytes(32) + bytes(body[4 + head :])
    if choice == 4:  # an absurd path length
        head = 32 * (4 if data[:4] in _ETH_IN else 5)
        body[4 + head : 4 + head + 32] = rng.getrandbits(256).to_bytes(32, "big")
        return bytes(body)
    return data  # canonical, unchanged


_ETH_IN = {
    function_signature_to_4byte_selector(sig) for sig in SIGNATURES.values() if sig.count(",") == 3
}


def test_hand_decoder_equals_eth_abi_on_random_and_mangled_calldata() -> None:
    """Exact equality with eth-abi (values, checksums, or both raising) over 3,000 cases: random
    amounts (0 to 2**256-1), path lengths 0-6, every variant, canonical and mangled layouts."""
    rng = random.Random(20261130)
    signatures = list(SIGNATURES.values())
    hand_path = errors = 0
    for _ in range(3_000):
        signature = rng.choice(signatures)
        types = ONE if signature.count(",") == 3 else TWO
        path = ["0x" + rng.randbytes(20).hex() for _ in range(rng.randrange(0, 7))]
        amounts = [rng.getrandbits(rng.choice((8, 64, 128, 256))) for _ in range(len(types) - 3)]
        args = [*amounts, path, "0x" + rng.randbytes(20).hex(), rng.getrandbits(40)]
        data = _mangle(rng, calldata(signature, types, args))
        value = rng.getrandbits(rng.choice((0, 64, 128)))
        want = _eth_abi_reference(data, value)
        if want == "error":
            errors += 1
            with pytest.raises(RouterCallError):
                decode_router_call(data, value)
        else:
            assert decode_router_call(data, value) == want, data.hex()
            hand_path += want is not None
    assert hand_path > 1_500 and errors > 300  # both roads were really taken


def test_hand_decoder_is_much_cheaper_than_eth_abi() -> None:
    """The point of it: one canonical swap decodes in a fraction of eth-abi's time."""
    data = calldata(CASES[0][0], TWO, [10**18, 1, PATH, TO, DEADLINE])
    reference = _eth_abi_reference(data, 0)
    assert decode_router_call(data) == reference
    hand = min(timeit.repeat(lambda: decode_router_call(data), number=200, repeat=5))
    slow = min(timeit.repeat(lambda: _eth_abi_reference(data, 0), number=200, repeat=5))
    assert hand < slow / 2, (hand, slow)  # honest bound on a loaded machine (~10x unloaded)
