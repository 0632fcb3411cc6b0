"""Hand-checked decoding of the hottest message, a pending transaction, for `messages.decode`,
and `construct`, pydantic's `model_construct` without its per-field walk, for the messages
detect builds on every trigger.

Why: pydantic's validation of a PendingTx was ~20 µs of detect's budget per pending swap at
3,000 tx/s. The hand check applies the very validators the model declares (the same
`_address`, `_hash32`, `_hex_data`, `_big_int` functions and the same bounds) to the one shape
ingest publishes: every key known, integers as JSON integers. Anything else (an unknown or
aliased key, a string where an int goes, a value a validator refuses) returns None and the
caller validates with pydantic, so what is accepted, the values and every error message are
pydantic's own (tests/unit/test_message_fast.py compares both over mangled payloads).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from mev_common import messages
from mev_common.messages import SCHEMA_VERSION, PendingTx
from mev_common.wire_types import _address, _big_int, _hash32, _hex_data

_INTS = {"chain_id": 1, "nonce": 0, "gas": 0}  # field -> least value (Field(ge=...))
_WEI = ("value", "gas_price", "max_fee_per_gas", "max_priority_fee_per_gas")  # Wei: >= 0
_OPTIONAL = frozenset(("to", "gas_price", "max_fee_per_gas", "max_priority_fee_per_gas", "raw"))
_KEYS = frozenset(("v", "hash", "from", "to", "input", *_INTS, *_WEI, "raw", "seen_on"))
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
        if "seen_on" in data:  # messages.EndpointName: a str of 1..64 characters, or null
            seen_on = data["seen_on"]
            if seen_on is not None and (type(seen_on) is not str or not 0 < len(seen_on) <= 64):
                return None
            fields["seen_on"] = seen_on
    except ValueError:  # AddressError too: pydantic words it
        return None
    fields_set = {("sender" if key == "from" else key) for key in data}
    return construct(PendingTx, fields, fields_set)


B = TypeVar("B", bound=BaseModel)
_IMMUTABLE = (int, str, bytes, bool, float, tuple, frozenset, type(None))
# model -> its field names, and its fields in order with their defaults (None: must be given)
_Shape = tuple[frozenset[str], tuple[tuple[str, tuple[Any] | None], ...]]
_SHAPES: dict[type[BaseModel], _Shape] = {}


def construct(model: type[B], values: dict[str, Any], fields_set: set[str] | None = None) -> B:
    """What `model.model_construct(**values)` makes of trusted values given by field name
    (`fields_set`: as model_construct's, else the keys given), without its walk over every
    field's aliases and defaults (~5 µs a Hop, ~7 µs an Opportunity; a default_factory field
    left out cost ~140 µs, pydantic inspecting the factory's signature). A field whose default
    is mutable or a factory must be given, and an unknown name is refused (TypeError), so the
    instance never shares a default or silently drops a value."""
    names, shape = _SHAPES.get(model) or _shape(model)
    if not names.issuperset(values):
        raise TypeError(f"{model.__name__} has no field {sorted(set(values) - names)}")
    ordered: dict[str, Any] = {}
    for name, default in shape:
        if name in values:
            ordered[name] = values[name]
        elif default is None:
            raise TypeError(f"{model.__name__}.{name} must be given (no immutable default)")
        else:
            ordered[name] = default[0]
    built = model.__new__(model)
    object.__setattr__(built, "__dict__", ordered)
    object.__setattr__(
        built, "__pydantic_fields_set__", set(values) if fields_set is None else fields_set
    )
    object.__setattr__(built, "__pydantic_extra__", None)
    object.__setattr__(built, "__pydantic_private__", None)
    return built


def _shape(model: type[BaseModel]) -> _Shape:
    """The model's fields with their immutable defaults; refuses models model_construct
    treats differently (extra allowed, private attributes, a post-init hook, a root model)."""
    if (
        model.model_config.get("extra") == "allow"
        or model.__private_attributes__
        or model.__pydantic_post_init__
        or model.__pydantic_root_model__
    ):
        raise TypeError(f"construct does not build {model.__name__}: use model_construct")
    shape = []
    for name, field in model.model_fields.items():
        default = field.default
        plain = field.default_factory is None and not field.is_required()
        shape.append((name, (default,) if plain and isinstance(default, _IMMUTABLE) else None))
    _SHAPES[model] = found = (frozenset(model.model_fields), tuple(shape))
    return found


messages._FAST[PendingTx] = pending_tx  # whichever of the two modules is imported first
