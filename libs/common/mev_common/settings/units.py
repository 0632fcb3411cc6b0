"""Amounts in the config: "50 gwei", "0.01 ether" or an integer of wei, exactly."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_UNITS = {"wei": 1, "gwei": 10**9, "ether": 10**18, "eth": 10**18}
_AMOUNT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(wei|gwei|ether|eth)?\s*$", re.IGNORECASE)
AMOUNT_HINT = "an amount like '50 gwei', '0.01 ether' or an integer of wei"


def parse_wei(value: Any) -> int:
    """Parse an amount in wei: an int, or a string like "50 gwei", "0.01 ether", "123".

    Floats are refused: 0.1 ether as a float is not exactly 10**17 wei.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {AMOUNT_HINT}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("expected a non-negative amount")
        return value
    if isinstance(value, float):
        raise ValueError(f"expected {AMOUNT_HINT} (a float is not exact)")
    if isinstance(value, str):
        match = _AMOUNT_RE.match(value)
        if match:
            number, unit = match.group(1), (match.group(2) or "wei").lower()
            wei = Decimal(number) * _UNITS[unit]
            if wei == wei.to_integral_value():
                return int(wei)
            raise ValueError("expected a whole number of wei")
    raise ValueError(f"expected {AMOUNT_HINT}")


def format_wei(wei: int) -> str:
    """An exact, readable amount for summaries: ether from 0.00001, gwei from 0.0001 gwei."""
    for unit, floor in (("ether", 10**13), ("gwei", 10**5)):
        if wei >= floor:
            text = format(Decimal(wei) / _UNITS[unit], "f")
            return f"{text.rstrip('0').rstrip('.') if '.' in text else text} {unit}"
    return f"{wei} wei"


Wei = Annotated[int, BeforeValidator(parse_wei)]
Port = Annotated[int, Field(ge=1, le=65535)]
