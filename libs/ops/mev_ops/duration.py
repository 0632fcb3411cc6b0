"""argparse types: durations as operators type them (`60s`, `5m`, `1h`, `250ms`, bare
seconds) and control values by their key's rule."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in `text`; a bare number is seconds. Zero and negative durations are refused."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration like 60s, 5m, 1h or 250ms, got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {text!r}")
    return seconds


def duration_arg(text: str) -> float:
    """argparse `type=`: a bad duration is a usage error (exit 2)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def control_arg(name: str) -> Callable[[str], str]:
    """argparse `type=` for a control flag: the key's one rule (mev_common.control), so the
    CLI refuses (exit 2, with the valid range) exactly what a service could not apply.
    Imported when a value is checked, not when the parser is built: mev_common.control brings
    nats and pydantic (~1 s of CPU), which `mev-bot run` and `devnet up` never need."""

    def check(text: str) -> str:
        from mev_common import control

        try:
            return control.validate(name, text)
        except control.ControlValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check
