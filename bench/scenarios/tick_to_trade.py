"""Scenario 3: latency per stage and tick-to-trade, from `Mev-Seen-Ns` to opportunity, to the
simulated bundle and to the signed transaction handed to the RPC.

Needs the real simulate (pyrevm) and submit services; until they land this reports why not.
"""

from __future__ import annotations

from bench.pipeline_ready import missing_stages
from bench.results import ScenarioResult

KEY = "tick_to_trade"
TITLE = "Latency per stage, tick-to-trade"


def run(tiny: bool = False) -> ScenarioResult:
    missing = missing_stages()
    if missing:
        return ScenarioResult.unavailable(KEY, TITLE, missing)
    return ScenarioResult.unavailable(KEY, TITLE, "pipeline landed; scenario not written yet")
