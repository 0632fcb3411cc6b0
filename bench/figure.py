"""The PNG: latency distributions per stage, detect's p95 against offered rate, and capture over
time (realized ÷ oracle profit, cumulative over blocks).

Why boxes on a log axis: the stages span microseconds (math) to milliseconds (bus hops), and a
p95 tail matters as much as the median.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.results import ScenarioResult

CAPTURE_SCENARIO = "profit_capture"


def draw(results: Sequence[ScenarioResult], path: Path, title: str) -> Path:
    """Left: every scenario's latency samples (ms); middle: rate ramps; right: capture."""
    boxes = [
        (f"{r.key}: {name}", values)
        for r in results
        for name, values in r.samples.items()
        if values
    ]
    ramps = [
        (f"{r.key}: {name}", pts)
        for r in results
        if r.key != CAPTURE_SCENARIO
        for name, pts in r.series.items()
        if pts
    ]
    capture = [
        (name, pts)
        for r in results
        if r.key == CAPTURE_SCENARIO
        for name, pts in r.series.items()
        if pts
    ]
    fig, (left, middle, right) = plt.subplots(
        1, 3, figsize=(19, max(5.0, 0.3 * len(boxes) + 1.5)), width_ratios=(3, 2, 2)
    )
    if boxes:
        left.boxplot(
            [values for _, values in boxes],
            vert=False,
            whis=(5, 95),
            showfliers=False,
            tick_labels=[name for name, _ in boxes],
        )
        left.set_xscale("log")
        left.set_xlabel("ms (box: p25–p75, whiskers: p5–p95)")
        left.invert_yaxis()
    else:
        left.text(0.5, 0.5, "no latency samples", ha="center", va="center")
    left.set_title("Latency per stage")
    _lines(middle, ramps, "offered rate (tx/s)", "p95 (ms)", "no rate ramp in this run")
    middle.set_title("Detect p95 vs offered rate")
    _lines(right, capture, "block", "realized ÷ oracle", "capture not available in this run")
    right.set_title("Profit capture over time (cumulative)")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _lines(
    ax: plt.Axes, series: list[tuple[str, list[tuple[float, float]]]], x: str, y: str, empty: str
) -> None:
    if not series:
        ax.text(0.5, 0.5, empty, ha="center", va="center")
        return
    for name, pts in series:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize="small")
