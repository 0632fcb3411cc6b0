"""Decoding of Uniswap V2 Router02 swap calls, the pending transactions a backrun follows.

Why one shape for all nine variants: the backrun only needs to know which side is exact, the
two amount limits and the path, so every variant decodes into `RouterSwap` and the ETH ones
take their input (or input limit) from the transaction's value, as the router does.

Why a hand decoder: eth-abi costs ~30 µs a call, a third of detect's budget per pending swap
at 3,000 tx/s. Every wallet encodes these calls the canonical way (the path right after the
head, zero padding), so that layout is sliced by hand (~3 µs); anything else goes to eth-abi,
so the result (or the error) is always eth-abi's (tests/unit/chain/test_router_calls.py checks
equality over random and mangled calldata).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector

from mev_common.messages import checksum

SwapKind = Literal[
    "swapExactTokensForTokens",
    "swapTokensForExactTokens",
    "swapExactETHForTokens",
    "swapTokensForExactETH",
    "swapExactTokensForETH",
    "swapETHForExactTokens",
    "swapExactTokensForTokensSupportingFeeOnTransferTokens",
    "swapExactETHForTokensSupportingFeeOnTransferTokens",
    "swapExactTokensForETHSupportingFeeOnTransferTokens",
]

_TWO_AMOUNTS = ("uint256", "uint256", "address[]", "address", "uint256")
_ONE_AMOUNT = ("uint256", "address[]", "address", "uint256")


@dataclass(frozen=True, slots=True)
class _Variant:
    kind: SwapKind
    exact_in: bool
    eth_in: bool
    eth_out: bool
    fee_on_transfer: bool


_VARIANTS = (
    _Variant("swapExactTokensForTokens", True, False, False, False),
    _Variant("swapTokensForExactTokens", False, False, False, False),
    _Variant("swapExactETHForTokens", True, True, False, False),
    _Variant("swapTokensForExactETH", False, False, True, False),
    _Variant("swapExactTokensForETH", True, False, True, False),
    _Variant("swapETHForExactTokens", False, True, False, False),
    _Variant("swapExactTokensForTokensSupportingFeeOnTransferTokens", True, False, False, True),
    _Variant("swapExactETHForTokensSupportingFeeOnTransferTokens", True, True, False, True),
    _Variant("swapExactTokensForETHSupportingFeeOnTransferTokens", True, False, True, True),
)


def _signature(variant: _Variant) -> str:
    return f"{variant.kind}({','.join(_ONE_AMOUNT if variant.eth_in else _TWO_AMOUNTS)})"


SIGNATURES: dict[SwapKind, str] = {v.kind: _signature(v) for v in _VARIANTS}
_BY_SELECTOR: dict[bytes, _Variant] = {
    function_signature_to_4byte_selector(_signature(v)): v for v in _VARIANTS
}


# Checksumming hashes the address: messages' hand EIP-55, cached (paths repeat the same few
# tokens; the recipient is usually the sender, whom decoding the PendingTx just checksummed).
_checksum = checksum


class RouterCallError(ValueError):
    """Calldata with a known swap selector whose arguments do not decode."""


@dataclass(frozen=True, slots=True)
class RouterSwap:
    """A decoded Router02 swap.

    `amount_in` is the exact input (exact-in kinds) or the most the sender will pay (exact-out
    kinds, `amountInMax`, or the value sent for swapETHForExactTokens). `amount_out` is the
    least the sender accepts (exact-in kinds, `amountOutMin`) or the exact output wanted.
    Addresses are checksummed.
    """

    kind: SwapKind
    exact_in: bool
    amount_in: int
    amount_out: int
    path: tuple[str, ...]
    to: str
    deadline: int
    value: int
    eth_in: bool
    eth_out: bool
    fee_on_transfer: bool

    @property
    def amount_in_max(self) -> int:
        return self.amount_in

    @property
    def amount_out_min(self) -> int:
        return self.amount_out


def _calldata(data: bytes | str) -> bytes:
    if isinstance(data, bytes):
        return data
    try:
        return bytes.fromhex(data[2:] if data[:2] in ("0x", "0X") else data)
    except ValueError as error:
        raise RouterCallError(f"calldata is not hex: {error}") from error


_ZERO12 = bytes(12)
_MAX_PATH = 64  # longer paths (never seen in practice) take eth-abi's road


def _address(word: bytes) -> str | None:
    """The address in a 32-byte word, lower-case like eth-abi's, or None if padded with junk."""
    return "0x" + word[12:].hex() if word[:12] == _ZERO12 else None


def _canonical_args(raw: bytes, fields: int) -> tuple[Any, ...] | None:
    """The arguments of a swap whose calldata has the canonical layout (`fields` head words,
    the one dynamic `address[]` right after the head, zero padding), as eth-abi returns them;
    None for any other layout, which the caller hands to eth-abi."""
    head = 32 * fields
    path_at = 4 + head - 96  # the path offset is the third-from-last head word
    if len(raw) < 4 + head + 32 or int.from_bytes(raw[path_at : path_at + 32]) != head:
        return None
    count = int.from_bytes(raw[4 + head : 4 + head + 32])
    start = 4 + head + 32
    if count > _MAX_PATH or len(raw) < start + 32 * count:
        return None
    path = []
    for at in range(start, start + 32 * count, 32):
        token = _address(raw[at : at + 32])
        if token is None:
            return None
        path.append(token)
    to = _address(raw[4 + head - 64 : 4 + head - 32])
    if to is None:
        return None
    deadline = int.from_bytes(raw[4 + head - 32 : 4 + head])
    amounts = [int.from_bytes(raw[at : at + 32]) for at in range(4, path_at, 32)]
    return (*amounts, tuple(path), to, deadline)


def decode_router_call(data: bytes | str, value: int = 0) -> RouterSwap | None:
    """The swap in a Router02 call's `data` (`value` is the tx's wei), or None if the call is
    not one of the nine swap functions. Raises RouterCallError for a swap that does not decode.
    """
    raw = _calldata(data)
    variant = _BY_SELECTOR.get(raw[:4])
    if variant is None:
        return None
    types = _ONE_AMOUNT if variant.eth_in else _TWO_AMOUNTS
    args = _canonical_args(raw, len(types))
    if args is None:
        try:
            args = decode(types, raw[4:])
        except (DecodingError, ValueError, OverflowError) as error:
            raise RouterCallError(f"{variant.kind}: {error}") from error
    if variant.eth_in:
        # The value is the exact input, or (swapETHForExactTokens) the input limit.
        amount_in, (amount_out, path, to, deadline) = value, args
    else:
        first, second, path, to, deadline = args
        amount_in, amount_out = (first, second) if variant.exact_in else (second, first)
    return RouterSwap(
        kind=variant.kind,
        exact_in=variant.exact_in,
        amount_in=amount_in,
        amount_out=amount_out,
        path=tuple(_checksum(token) for token in path),
        to=_checksum(to),
        deadline=deadline,
        value=value,
        eth_in=variant.eth_in,
        eth_out=variant.eth_out,
        fee_on_transfer=variant.fee_on_transfer,
    )
