"""One line per config problem: "key.path: got <value>; expected <what>", secrets masked."""

from __future__ import annotations

import difflib
import os
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel

from mev_common.settings.display import is_secret, mask_url
from mev_common.settings.model import ENV_PREFIX, Settings
from mev_common.settings.units import AMOUNT_HINT

_EXPECTATIONS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "string_too_short": "a non-empty string",
}


def format_error(err: dict[str, Any]) -> str:
    """One line: key path, the bad value (secrets masked), its env origin, what is expected."""
    loc = tuple(p for p in err.get("loc", ()) if p != "__root__")
    kind = err.get("type", "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "config_problem":
        loc = loc + tuple(ctx["path"])
        value = ctx["value"]
    key = dotted(loc)
    origin = _env_origin(loc)
    got = f"{_show(loc, value)}{origin}"
    if kind == "extra_forbidden":
        return f"{key}: unknown key{origin or ''}; {_known_keys(loc)}"
    if kind == "missing":
        return f"{key}: missing; expected {_describe(loc)} (required)"
    return f"{key}: got {got}; expected {_expectation(kind, str(err.get('msg', '')), ctx)}"


def dotted(loc: tuple[str | int, ...]) -> str:
    """`strategies.backrun.max_gas_price`, list items as `rpc_endpoints[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expectation(kind: str, msg: str, ctx: dict[str, Any]) -> str:
    if kind == "config_problem":
        return str(ctx["expected"])
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}  # fmt: skip
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"a number {bounds[kind]} {limit}"
    if kind in _EXPECTATIONS:
        return _EXPECTATIONS[kind]
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "a mapping of keys"
    if kind == "too_short":
        return f"at least {ctx.get('min_length', 1)} item(s)"
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:] if msg else msg
    for prefix in ("input should be ", "expected "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _env_origin(loc: tuple[str | int, ...]) -> str:
    """' (from MEV_X__Y)' when an env var set this key or a section holding it."""
    names = [p for p in loc if isinstance(p, str)]
    for i in range(len(names), 0, -1):
        var = ENV_PREFIX + "__".join(names[:i]).upper()
        if any(k.upper() == var for k in os.environ):
            return f" (from {var})"
    return ""


def kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _short(repr(value))


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _show(loc: tuple[str | int, ...], value: Any) -> str:
    """The bad value for an error line: never a secret, never a URL's credentials."""
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if isinstance(value, str):
        if is_secret(last, value):
            return "'***'"
        if last.endswith("url") or "://" in value:
            return repr(mask_url(value))
    return kind_of(value)


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model describing the value at `loc` (None for a leaf)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _describe(loc: tuple[str | int, ...]) -> str:
    model = _model_at(loc)
    if model is None:
        return "a value" if loc[-1:] != ("max_gas_price",) else AMOUNT_HINT
    required = [n for n, f in model.model_fields.items() if f.is_required()]
    return "a section" + (f" with {', '.join(required)}" if required else "")


def _known_keys(loc: tuple[str | int, ...]) -> str:
    parent = _model_at(loc[:-1])
    if parent is None:
        return "remove it or fix its spelling"
    names = list(parent.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    if close:
        return f"did you mean {close[0]}?"
    return f"expected one of {', '.join(names)}"
