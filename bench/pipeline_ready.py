"""Whether the pipeline in this tree can run scenarios 3 and 6: real simulate and submit stages.

Why look at the code rather than a flag: the simulate skeleton (passthrough.py) republishes
opportunities without an EVM, and timing it would report a number that means nothing.
"""

from __future__ import annotations

from pathlib import Path

SERVICES = Path(__file__).resolve().parents[1] / "services"


def _sources(stage: str) -> str:
    return "\n".join(p.read_text(errors="ignore") for p in (SERVICES / stage).glob("*.py"))


def missing_stages() -> str:
    """Empty if simulate and submit are real; otherwise why the scenario cannot run yet."""
    missing = []
    simulate_service = (SERVICES / "simulate" / "service.py").read_text(errors="ignore")
    if "passthrough" in simulate_service or "pyrevm" not in _sources("simulate"):
        missing.append("simulate is still the pass-through skeleton (no pyrevm)")
    if "eth_sendRawTransaction" not in _sources("submit"):
        missing.append("submit does not send signed transactions yet")
    return "; ".join(missing)
