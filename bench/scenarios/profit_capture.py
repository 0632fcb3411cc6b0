"""Scenario 6: profit capture, realized ÷ oracle over a seeded devnet flow with the bot running.

Needs the real simulate and submit services and an oracle of bench's own; until both exist
this reports why not (never a made-up number).
"""

from __future__ import annotations

from bench.pipeline_ready import missing_stages
from bench.results import ScenarioResult

KEY = "profit_capture"
TITLE = "Profit capture vs oracle"


def run(tiny: bool = False) -> ScenarioResult:
    missing = missing_stages()
    if missing:
        return ScenarioResult.unavailable(KEY, TITLE, missing)
    return ScenarioResult.unavailable(
        KEY,
        TITLE,
        "the pipeline has landed, but bench's own oracle (best arbitrage per block "
        "from exact state) is not written yet",
    )
