"""The field types of every message: big integers as exact strings, checksummed addresses,
hashes and hex bytes, each validated where a message is read (mev_common.messages uses them;
message_fast's hand decoder reuses the same checks)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal

# eth_hash directly (the backend eth_utils.keccak calls): eth_utils' wrapper checks and
# converts its argument first, half of the ~18 µs a new sender's checksum cost detect
from eth_hash.auto import keccak
from pydantic import BeforeValidator, Field, PlainSerializer

_HEX_RE = re.compile(r"^0x[0-9a-fA-F]*$")
_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"(?:0[xX])?[0-9a-fA-F]{40}\Z")  # what eth_utils.is_hex_address takes
# EIP-55: a letter is upper case where the keccak of the lower-case hex has a nibble >= 8
_LETTER = bytes(1 if c in b"abcdef" else 0 for c in range(256))  # bytes.translate tables
_HIGH_NIBBLE = bytes(1 if c in b"89abcdef" else 0 for c in range(256))


def _big_int(value: Any) -> int:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("big integers must be decimal or 0x-hex strings, not JSON numbers")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.startswith(("0x", "0X")) and _HEX_RE.match(value) and len(value) > 2:
            return int(value, 16)
        if value.isdigit() or (value.startswith("-") and value[1:].isdigit()):
            return int(value)
    raise ValueError("expected a decimal or 0x-hex string of an integer")


class AddressError(ValueError):
    """Not an address: `kind` is "not_hex" (not 0x + 40 hex digits) or "bad_checksum" (mixed
    case that fails EIP-55), so settings can word the same check for an operator."""

    def __init__(self, kind: Literal["not_hex", "bad_checksum"]) -> None:
        super().__init__(
            "expected a 20-byte address: 0x followed by 40 hex digits"
            if kind == "not_hex"
            else "mixed-case address with a wrong EIP-55 checksum"
        )
        self.kind = kind


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise AddressError("not_hex")
    return _checksummed(value)


def checksum(address: str) -> str:
    """EIP-55 form of an address (cached); AddressError (a ValueError) if it is not one."""
    return _checksummed(address)


@lru_cache(maxsize=1 << 16)
def _checksummed(value: str) -> str:
    """Cached: the same few hundred addresses (pools, tokens, routers) recur in every message.
    A pending swap's sender is new each time, so this runs once per trigger: one keccak and a
    table lookup per digit (eth_utils' validate-then-checksum took two keccaks and ~3x as long,
    a tenth of detect's CPU per trigger). Equal to eth_utils on every input (unit-tested)."""
    if not _ADDRESS_RE.match(value):
        raise AddressError("not_hex")
    checksummed = _eip55(value[-40:].lower())
    tail = value[2:]  # as before: mixed case must be exactly "0x" + the EIP-55 digits
    if tail != tail.lower() and tail != tail.upper() and value != checksummed:
        raise AddressError("bad_checksum")
    return checksummed


@lru_cache(maxsize=1 << 16)
def _eip55(lower: str) -> str:
    """ "0x" + the EIP-55 form of 40 lower-case hex digits. Cached apart from `_checksummed`,
    whose key is the spelling: a swap's recipient (lower case in calldata) is usually its
    sender (checksummed in the message), and both spellings then cost one keccak."""
    raw = lower.encode("ascii")
    # 40 digits at once (a per-digit table lookup and join was ~5 µs): a byte is 1 in `upper`
    # where the digit is a letter and its keccak nibble >= 8; each such byte loses 0x20 (a-f to
    # A-F, never a borrow: only letters, 0x61-0x66, are lowered)
    nibbles = keccak(raw).hex()[:40].encode("ascii")
    upper = int.from_bytes(raw.translate(_LETTER), "big") & int.from_bytes(
        nibbles.translate(_HIGH_NIBBLE), "big"
    )
    return "0x" + (int.from_bytes(raw, "big") - 0x20 * upper).to_bytes(40, "big").decode("ascii")


def _hash32(value: Any) -> str:
    if not isinstance(value, str) or not _HASH_RE.match(value):
        raise ValueError("expected a 32-byte hash: 0x followed by 64 hex digits")
    return value.lower()


def _hex_data(value: Any) -> str:
    if not isinstance(value, str) or not _HEX_RE.match(value) or len(value) % 2:
        raise ValueError("expected 0x-prefixed hex bytes")
    return value.lower()


BigInt = Annotated[int, BeforeValidator(_big_int), PlainSerializer(str, return_type=str)]
Wei = Annotated[int, BeforeValidator(_big_int), Field(ge=0), PlainSerializer(str, return_type=str)]
Address = Annotated[str, BeforeValidator(_address)]
Hash32 = Annotated[str, BeforeValidator(_hash32)]
HexData = Annotated[str, BeforeValidator(_hex_data)]
