"""Decoding of Uniswap V3 SwapRouter `exactInputSingle` and `exactInput` calls, the pending
V3 swaps a backrun follows.

Why by hand, with no eth-abi fallback: this runs on detect's hot path for every pending tx to a
SwapRouter, and its input comes from the public mempool. Every wallet encodes these two calls
the canonical way (static tuple inline; for `exactInput` one tuple offset, the path bytes right
after the tuple's head, zero padding), so only that layout is accepted and every word is
checked the way SwapRouter's ABI decoder (abicoder v2) checks it: an address or uint24/uint160
with dirty high bits reverts on chain, so it is refused here. Anything else raises
SwapRouterCallError with the reason (detect dead-letters it); a call that is not one of the two
returns None. tests/unit/chain/test_swap_router_calls.py compares against eth-abi encodings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mev_common.chain.router_calls import RouterCallError, _calldata
from mev_common.messages import checksum

EXACT_INPUT_SINGLE = bytes.fromhex("414bf389")
# exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))
EXACT_INPUT = bytes.fromhex("c04b8d59")
# exactInput((bytes,address,uint256,uint256,uint256))
MAX_HOPS = 16  # a longer path is refused (no wallet sends one; it bounds the work per tx)
_ADDRESS_LEN = 20
_HOP_LEN = 23  # fee (3 bytes) + token (20 bytes) after the first token
_SINGLE_LEN = 4 + 8 * 32
_INPUT_HEAD = 4 + 32 + 5 * 32  # selector, tuple offset, tuple head (path offset + 4 words)
_ZERO12 = bytes(12)

SwapRouterKind = Literal["exactInputSingle", "exactInput"]


class SwapRouterCallError(ValueError):
    """Calldata with a SwapRouter swap selector that is malformed or not canonically encoded."""


@dataclass(frozen=True, slots=True)
class SwapRouterSwap:
    """An exact-input V3 swap: `tokens[i]` -> `tokens[i + 1]` through the pool at `fees[i]`
    (pips). `sqrt_price_limit_x96` is 0 for none (always for `exactInput`). Checksummed."""

    kind: SwapRouterKind
    tokens: tuple[str, ...]
    fees: tuple[int, ...]
    amount_in: int
    amount_out_min: int
    recipient: str
    deadline: int
    sqrt_price_limit_x96: int
    value: int


def _hex(data: bytes | str) -> bytes:
    try:
        return _calldata(data)
    except RouterCallError as error:
        raise SwapRouterCallError(str(error)) from error


def _word(raw: bytes, at: int) -> int:
    return int.from_bytes(raw[at : at + 32])


def _address(raw: bytes, at: int, name: str) -> str:
    word = raw[at : at + 32]
    if word[:12] != _ZERO12:
        raise SwapRouterCallError(f"{name}: not an address (dirty high bytes)")
    return "0x" + word[12:].hex()


def _uint(raw: bytes, at: int, bits: int, name: str) -> int:
    value = _word(raw, at)
    if value >> bits:
        raise SwapRouterCallError(f"{name}: does not fit uint{bits}")
    return value


def decode_swap_router_call(data: bytes | str, value: int = 0) -> SwapRouterSwap | None:
    """The swap in a SwapRouter call's `data` (`value`: the tx's wei), or None if the call is
    neither exactInputSingle nor exactInput. Raises SwapRouterCallError for malformed ones."""
    raw = _hex(data)
    selector = raw[:4]
    if selector == EXACT_INPUT_SINGLE:
        return _single(raw, value)
    if selector == EXACT_INPUT:
        return _multi(raw, value)
    return None


def _single(raw: bytes, value: int) -> SwapRouterSwap:
    if len(raw) != _SINGLE_LEN:
        raise SwapRouterCallError(
            f"exactInputSingle: {len(raw)} bytes of calldata, expected {_SINGLE_LEN}"
        )
    token_in = _address(raw, 4, "tokenIn")
    token_out = _address(raw, 36, "tokenOut")
    fee = _uint(raw, 68, 24, "fee")
    recipient = _address(raw, 100, "recipient")
    return SwapRouterSwap(
        kind="exactInputSingle",
        tokens=(checksum(token_in), checksum(token_out)),
        fees=(fee,),
        amount_in=_word(raw, 164),
        amount_out_min=_word(raw, 196),
        recipient=checksum(recipient),
        deadline=_word(raw, 132),
        sqrt_price_limit_x96=_uint(raw, 228, 160, "sqrtPriceLimitX96"),
        value=value,
    )


def _multi(raw: bytes, value: int) -> SwapRouterSwap:
    if len(raw) < _INPUT_HEAD + 32:
        raise SwapRouterCallError(f"exactInput: {len(raw)} bytes of calldata is too short")
    if _word(raw, 4) != 32:
        raise SwapRouterCallError("exactInput: params offset is not 0x20 (non-canonical)")
    if _word(raw, 36) != 5 * 32:
        raise SwapRouterCallError("exactInput: path offset is not 0xa0 (non-canonical)")
    length = _word(raw, _INPUT_HEAD)
    hops, rest = divmod(length - _ADDRESS_LEN, _HOP_LEN) if length >= _ADDRESS_LEN else (0, 1)
    if hops < 1 or rest:
        raise SwapRouterCallError(f"exactInput: a path of {length} bytes is not token(fee token)+")
    if hops > MAX_HOPS:
        raise SwapRouterCallError(f"exactInput: {hops} hops, more than {MAX_HOPS}")
    start = _INPUT_HEAD + 32
    padded = -(-length // 32) * 32
    if len(raw) != start + padded:
        raise SwapRouterCallError(
            f"exactInput: {len(raw)} bytes of calldata, expected {start + padded} for the path"
        )
    if any(raw[start + length :]):
        raise SwapRouterCallError("exactInput: path padding is not zero (non-canonical)")
    path = raw[start : start + length]
    tokens = [checksum("0x" + path[:_ADDRESS_LEN].hex())]
    fees = []
    for at in range(_ADDRESS_LEN, length, _HOP_LEN):
        fees.append(int.from_bytes(path[at : at + 3]))
        tokens.append(checksum("0x" + path[at + 3 : at + _HOP_LEN].hex()))
    return SwapRouterSwap(
        kind="exactInput",
        tokens=tuple(tokens),
        fees=tuple(fees),
        amount_in=_word(raw, 132),
        amount_out_min=_word(raw, 164),
        recipient=checksum(_address(raw, 68, "recipient")),
        deadline=_word(raw, 100),
        sqrt_price_limit_x96=0,
        value=value,
    )
