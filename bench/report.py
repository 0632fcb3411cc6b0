"""The Markdown table, the JSON file and where they go (bench/results/).

Why Markdown: README's performance section quotes the table as is, with the date and machine in
its header, so a reader can tell which run a number came from.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.results import Row, ScenarioResult
from bench.stats import Summary

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """One line that identifies the machine: CPU model, cores, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _num(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _pair(summary: Summary | None, unit: str) -> str:
    """p50 / p95 with how many observations they rest on (`n=`), when they are percentiles."""
    if summary is None:
        return "–"
    n = f" (n={summary.samples:,})" if summary.samples else ""
    if summary.p50 == summary.p95:
        return f"{_num(summary.p50)} {unit}".strip() + n
    return f"{_num(summary.p50)} / {_num(summary.p95)} {unit}".strip() + n


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return "–"
    return f"{_num(row.ratio)}× ({row.ratio_of})" if row.ratio_of else f"{_num(row.ratio)}×"


def markdown(results: Sequence[ScenarioResult], started: datetime, size: str) -> str:
    """The table: one line per metric; p50 / p95 are medians over the runs."""
    lines = [
        f"Benchmarks of {started:%Y-%m-%d %H:%M} UTC on {machine()} (size: {size}). "
        "Values are p50 / p95 (nearest rank on exact samples, never histogram buckets), each the "
        "median over repeated runs; n= is the number of observations behind them; a single "
        "value is a median.",
        "",
        "| # | Scenario | Metric | Ours | Baseline | Baseline value | Ratio | Note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, result in enumerate(results, start=1):
        if not result.available:
            lines.append(
                f"| {number} | {result.title} | – | not available: {result.reason} "
                "| – | – | – | – |"
            )
            continue
        for row in result.rows:
            lines.append(
                f"| {number} | {result.title} | {row.metric} | {_pair(row.ours, row.unit)} | "
                f"{row.baseline_name or '–'} | {_pair(row.baseline, row.unit)} | {_ratio(row)} | "
                f"{row.note} |"
            )
    return "\n".join(lines) + "\n"


def write(
    results: Sequence[ScenarioResult],
    started: datetime,
    size: str,
    out_dir: Path = RESULTS_DIR,
) -> tuple[Path, Path]:
    """Write <timestamp>.json and latest.md; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    payload: dict[str, Any] = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "size": size,
        "scenarios": [r.to_json() for r in results],
    }
    json_path = out_dir / f"{stamp}.json"
    json_path.write_text(json.dumps(payload, indent=1, default=str))
    md_path = out_dir / "latest.md"
    md_path.write_text(markdown(results, started, size))
    return json_path, md_path
