"""What a scenario hands back: table rows, raw samples for the figure, and availability.

Why one flat row shape for every scenario: the Markdown table, the JSON and the smoke test read
the same fields, and a scenario that cannot run yet (its service has not landed) says why in its
row instead of inventing numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.stats import Summary


@dataclass(frozen=True)
class Row:
    """One metric: ours and the baseline measured in the same run, and their ratio.

    `ratio_of` names what the ratio divides (e.g. "ours / raw nats-py"), so a reader never has
    to guess whether higher is better.
    """

    metric: str
    unit: str
    ours: Summary | None
    baseline_name: str = ""
    baseline: Summary | None = None
    ratio: float | None = None
    ratio_of: str = ""
    note: str = ""

    def numbers(self) -> list[float]:
        """Every number in the row (for the smoke test's finiteness check)."""
        out: list[float] = []
        for summary in (self.ours, self.baseline):
            if summary is not None:
                out += [summary.p50, summary.p95]
        if self.ratio is not None:
            out.append(self.ratio)
        return out


@dataclass
class ScenarioResult:
    """A scenario's rows; `samples` are raw per-stage series the figure draws."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    available: bool = True
    reason: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unavailable(cls, key: str, title: str, reason: str) -> ScenarioResult:
        return cls(key=key, title=title, available=False, reason=reason)

    def all_finite(self) -> bool:
        return all(math.isfinite(x) for row in self.rows for x in row.numbers())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [
            {
                **asdict(row),
                "ours": None if row.ours is None else row.ours._asdict(),
                "baseline": None if row.baseline is None else row.baseline._asdict(),
            }
            for row in self.rows
        ]
        return data
