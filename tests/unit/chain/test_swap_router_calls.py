"""SwapRouter (V3) swap decoding: calldata encoded here with eth-abi from the real signatures,
and every malformed shape a hostile mempool can send refused with its reason."""

from __future__ import annotations

import random

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.chain.swap_router_calls import (
    EXACT_INPUT,
    EXACT_INPUT_SINGLE,
    MAX_HOPS,
    SwapRouterCallError,
    SwapRouterSwap,
    decode_swap_router_call,
)

WETH = to_checksum_address("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
USDC = to_checksum_address("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
DAI = to_checksum_address("0x6b175474e89094c44da98b954eedeac495271d0f")
TO = to_checksum_address("0x000000000000000000000000000000000000bEEF")
SINGLE = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
MULTI = "exactInput((bytes,address,uint256,uint256,uint256))"
SINGLE_PARAMS = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"
MULTI_PARAMS = "(bytes,address,uint256,uint256,uint256)"


def single(token_in: str, token_out: str, fee: int, amount: int, min_out: int, limit: int = 0,
           deadline: int = 1_700_000_000) -> bytes:  # fmt: skip
    params = (token_in, token_out, fee, TO, deadline, amount, min_out, limit)
    return EXACT_INPUT_SINGLE + encode([SINGLE_PARAMS], [params])


def path_bytes(tokens: list[str], fees: list[int]) -> bytes:
    out = bytes.fromhex(tokens[0][2:])
    for fee, token in zip(fees, tokens[1:], strict=True):
        out += fee.to_bytes(3, "big") + bytes.fromhex(token[2:])
    return out


def multi(path: bytes, amount: int, min_out: int, deadline: int = 1_700_000_000) -> bytes:
    return EXACT_INPUT + encode([MULTI_PARAMS], [(path, TO, deadline, amount, min_out)])


def test_selectors_are_the_real_signatures() -> None:
    assert function_signature_to_4byte_selector(SINGLE) == EXACT_INPUT_SINGLE
    assert function_signature_to_4byte_selector(MULTI) == EXACT_INPUT


def test_exact_input_single() -> None:
    data = single(USDC, WETH, 500, 20_000 * 10**6, 123, limit=2**100)
    assert decode_swap_router_call("0x" + data.hex(), value=7) == SwapRouterSwap(
        kind="exactInputSingle", tokens=(USDC, WETH), fees=(500,), amount_in=20_000 * 10**6,
        amount_out_min=123, recipient=TO, deadline=1_700_000_000,
        sqrt_price_limit_x96=2**100, value=7,
    )  # fmt: skip


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_exact_input_multi_hop(hops: int) -> None:
    tokens = [WETH, USDC, DAI, WETH][: hops + 1]
    fees = [500, 3000, 10000][:hops]
    data = multi(path_bytes(tokens, fees), 10**18, 5)
    swap = decode_swap_router_call(data)
    assert swap == SwapRouterSwap(
        kind="exactInput", tokens=tuple(tokens), fees=tuple(fees), amount_in=10**18,
        amount_out_min=5, recipient=TO, deadline=1_700_000_000, sqrt_price_limit_x96=0, value=0,
    )  # fmt: skip


def test_random_calls_round_trip() -> None:
    """Random tokens, fees (any uint24), amounts (any uint256) and path lengths."""
    rng = random.Random(12)
    for _ in range(300):
        tokens = [to_checksum_address(rng.randbytes(20).hex()) for _ in range(rng.randint(2, 6))]
        fees = [rng.randrange(2**24) for _ in tokens[1:]]
        amount, min_out, deadline = (rng.randrange(2**256) for _ in range(3))
        swap = decode_swap_router_call(multi(path_bytes(tokens, fees), amount, min_out, deadline))
        assert swap is not None
        assert (swap.tokens, swap.fees) == (tuple(tokens), tuple(fees))
        assert (swap.amount_in, swap.amount_out_min, swap.deadline) == (amount, min_out, deadline)
        limit = rng.randrange(2**160)
        data = single(tokens[0], tokens[1], fees[0], amount, min_out, limit, deadline)
        one = decode_swap_router_call(data)
        assert one is not None and one.tokens == tuple(tokens[:2]) and one.fees == (fees[0],)
        assert (one.amount_in, one.sqrt_price_limit_x96, one.deadline) == (amount, limit, deadline)


def test_other_calls_are_not_swaps() -> None:
    assert decode_swap_router_call("0x") is None
    assert decode_swap_router_call("0x12") is None
    multicall = function_signature_to_4byte_selector("multicall(bytes[])")
    assert decode_swap_router_call(multicall + encode(["bytes[]"], [[]])) is None
    exact_output = function_signature_to_4byte_selector(
        "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
    )
    assert decode_swap_router_call(exact_output + bytes(256)) is None


def _set(data: bytes, at: int, word: bytes) -> bytes:
    return data[:at] + word + data[at + 32 :]


GOOD_SINGLE = single(USDC, WETH, 500, 10**6, 1)
GOOD_MULTI = multi(path_bytes([WETH, USDC, DAI], [500, 3000]), 10**18, 1)
DIRTY = b"\x01" + bytes(31)
MALFORMED = {
    "single truncated": (GOOD_SINGLE[:-1], "259 bytes of calldata, expected 260"),
    "single selector only": (EXACT_INPUT_SINGLE, "4 bytes of calldata"),
    "single trailing byte": (GOOD_SINGLE + b"\x00", "261 bytes of calldata"),
    "single dirty tokenIn": (_set(GOOD_SINGLE, 4, DIRTY), "tokenIn: not an address"),
    "single dirty tokenOut": (_set(GOOD_SINGLE, 36, DIRTY), "tokenOut: not an address"),
    "single fee over uint24": (_set(GOOD_SINGLE, 68, (2**24).to_bytes(32)), "fee: does not fit"),
    "single dirty recipient": (_set(GOOD_SINGLE, 100, DIRTY), "recipient: not an address"),
    "single limit over uint160": (
        _set(GOOD_SINGLE, 228, (2**160).to_bytes(32)),
        "sqrtPriceLimitX96: does not fit",
    ),
    "multi selector only": (EXACT_INPUT, "too short"),
    "multi head only": (GOOD_MULTI[:196], "too short"),
    "multi bad params offset": (_set(GOOD_MULTI, 4, (64).to_bytes(32)), "params offset"),
    "multi bad path offset": (_set(GOOD_MULTI, 36, (192).to_bytes(32)), "path offset"),
    "multi path cut": (GOOD_MULTI[:-32], "expected"),
    "multi path overlong length": (_set(GOOD_MULTI, 196, (2**255).to_bytes(32)), "not token"),
    "multi path one token": (multi(bytes.fromhex(WETH[2:]), 1, 1), "20 bytes is not token"),
    "multi path empty": (multi(b"", 1, 1), "0 bytes is not token"),
    "multi path ragged": (multi(path_bytes([WETH, USDC], [500]) + b"\x01", 1, 1), "44 bytes"),
    "multi dirty padding": (GOOD_MULTI[:-1] + b"\x01", "padding is not zero"),
    "multi trailing word": (GOOD_MULTI + bytes(32), "expected"),
    "multi dirty recipient": (_set(GOOD_MULTI, 68, DIRTY), "recipient: not an address"),
    "multi too many hops": (
        multi(path_bytes([WETH] * (MAX_HOPS + 2), [500] * (MAX_HOPS + 1)), 1, 1),
        "hops, more",
    ),
    "not hex": ("0x414bf389zz", "not hex"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_calls_are_refused_with_a_reason(name: str) -> None:
    data, reason = MALFORMED[name]
    with pytest.raises(SwapRouterCallError, match=reason):
        decode_swap_router_call(data)


def test_random_garbage_never_raises_anything_else() -> None:
    """Mangled bytes of good calls: a SwapRouterCallError or a swap, never another error."""
    rng = random.Random(3)
    for _ in range(2000):
        data = bytearray(rng.choice([GOOD_SINGLE, GOOD_MULTI]))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(4, len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(4, len(data))]
        try:
            decode_swap_router_call(bytes(data))
        except SwapRouterCallError:
            pass
