"""Hand-checked decoding of the hottest message, a pending transaction, for `messages.decode`.

Why: pydantic's validation of a PendingTx was ~20 µs of detect's budget per pending swap at
3,000 tx/s. The hand check applies the very validators the model declares (the same
`_address`, `_hash32`, `_hex_data`, `_big_int` functions and the same bounds) to the one shape
ingest publishes: every key known, integers as JSON integers. Anything else (an unknown or
aliased key, a string where an int goes, a value a validator refuses) returns None and the
caller validates with pydantic, so what is accepted, the values and every error message are
pydantic's own (tests/unit/test_message_fast.py compares both over mangled payloads).
"""

from __future__ import annotations

from typing import Any

from mev_common import messages
from mev_common.messages import SCHEMA_VERSION, PendingTx
from mev_common.wire_types import _address, _big_int, _hash32, _hex_data

_INTS = {"chain_id": 1, "nonce": 0, "gas": 0}  # field -> least value (Field(ge=...))
_WEI = ("value", "gas_price", "max_fee_per_gas", "max_priority_fee_per_gas")  # Wei: >= 0
_OPTIONAL = frozenset(("to", "gas_price", "max_fee_per_gas", "max_priority_fee_per_gas", "raw"))
_KEYS = frozenset(("v", "hash", "from", "to", "input", *_INTS, *_WEI, "raw"))
_REQUIRED = frozenset(("hash", "from", *_INTS))


def pending_tx(data: dict[str, Any]) -> PendingTx | None:
    """The PendingTx pydantic would make of `data` (a decoded JSON object), or None to let
    pydantic decide (and word the error)."""
    if not _KEYS.issuperset(data) or not _REQUIRED.issubset(data):
        return None
    if data.get("v", SCHEMA_VERSION) != SCHEMA_VERSION:
        return None
    fields: dict[str, Any] = {}
    try:
        for name, least in _INTS.items():
            number = data[name]
            if type(number) is not int or number < least:
                return None
            fields[name] = number
        for name in _WEI:
            if name in data:
                wei = data[name]
                if wei is None and name in _OPTIONAL:
                    fields[name] = None
                    continue
                wei = _big_int(wei)
                if wei < 0:
                    return None
                fields[name] = wei
        fields["hash"] = _hash32(data["hash"])
        fields["sender"] = _address(data["from"])
        if "to" in data:
            to = data["to"]
            fields["to"] = None if to is None else _address(to)
        if "input" in data:
            fields["input"] = _hex_data(data["input"])
        if "raw" in data:
            raw = data["raw"]
            fields["raw"] = None if raw is None else _hex_data(raw)
    except ValueError:  # AddressError too: pydantic words it
        return None
    fields_set = {("sender" if key == "from" else key) for key in data}
    return PendingTx.model_construct(fields_set, **fields)


messages._FAST[PendingTx] = pending_tx  # whichever of the two modules is imported first
