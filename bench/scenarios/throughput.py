"""Scenario placeholder: reports why it has no numbers yet."""

from __future__ import annotations

from bench.results import ScenarioResult

KEY = "throughput"
TITLE = "Throughput: pending swaps into detect"


def run(tiny: bool = False) -> ScenarioResult:
    return ScenarioResult.unavailable(KEY, TITLE, "scenario not written yet")
