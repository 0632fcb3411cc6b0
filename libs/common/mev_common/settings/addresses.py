"""Addresses and code hashes in the config: checked where they are read, with the fix named."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from mev_common.messages import AddressError, checksum


def _checksum(v: Any) -> str:
    try:
        if not isinstance(v, str):
            raise AddressError("not_hex")
        return checksum(v)
    except AddressError as exc:
        if exc.kind == "not_hex":
            raise ValueError("expected a 20-byte hex address (0x + 40 hex digits)") from None
        raise ValueError(
            "expected an address whose mixed case matches its EIP-55 checksum "
            "(a wrong checksum usually means a typo)"
        ) from None


Address = Annotated[str, BeforeValidator(_checksum)]
ZERO_ADDRESS = "0x" + "0" * 40


def is_placeholder_address(address: str) -> bool:
    """Addresses below 2**32 are precompiles or system slots, never a deployed DEX or executor:
    config/production.yaml uses them as visible placeholders."""
    return int(address, 16) < 2**32


def _code_hash(v: Any) -> str:
    if not isinstance(v, str) or not re.match(r"^0x[0-9a-fA-F]{64}$", v):
        raise ValueError("expected a 32-byte hash: 0x followed by 64 hex digits")
    return v.lower()


CodeHash = Annotated[str, BeforeValidator(_code_hash)]
