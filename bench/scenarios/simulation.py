"""Scenario placeholder: reports why it has no numbers yet."""

from __future__ import annotations

from bench.results import ScenarioResult

KEY = "simulation"
TITLE = "Simulation latency: pyrevm vs anvil eth_call vs py-evm"


def run(tiny: bool = False) -> ScenarioResult:
    return ScenarioResult.unavailable(KEY, TITLE, "scenario not written yet")
