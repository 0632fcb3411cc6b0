"""Mixed V2/V3 sizing, a base commit's against the work tree's, side by side in one run.

`python -m bench.sizing_ab [--base REV] [--rounds N]`: extracts libs/common at REV (default
HEAD) with `git archive`, then alternates rounds of the two (each round a fresh process per side,
the same cycles: bench amm_v3_peer's case set), so load on the shared cores falls on both alike.
Per cycle it keeps the min and the median over all runs, and reports p50 / p95 (nearest rank)
over cycles with n, per group: 2-pool, 3-pool, and 3-pool split by whether the coarse middle
search runs (through two 6-decimal tokens). It fails if any cycle's answer differs: a speed-up
must not cost a wei. Why not a bench scenario: the base side needs a second copy of mev_common.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.stats import quantile

REPO = Path(__file__).resolve().parent.parent
REPEATS = 5  # timed passes over every cycle per side per round
GROUPS = {
    "2-pool": ("2-pool",),
    "3-pool": ("3-pool", "3-pool coarse"),
    "3-pool, no coarse search": ("3-pool",),
    "3-pool through two coarse tokens": ("3-pool coarse",),
}


def measure_side(repeats: int) -> dict[str, object]:
    """This process's mev_common: each profitable cycle's answer, group and times (µs)."""
    import gc

    from mev_common.amm import mixed_sizing
    from mev_common.amm.legs import cycle_legs
    from mev_common.amm.v2 import V2Pool
    from mev_common.amm.v3 import V3Pool

    from bench.scenarios.amm_peer import MAX_INPUT
    from bench.scenarios.amm_v3_peer import make_cases

    v2, v3, cycles, _ = make_cases(3, 0, 120)  # the scenario's full-size cycles
    pools: dict[str, V2Pool | V3Pool] = {p.address: p for p in v2}
    pools.update({p.address: p for p in v3})
    paths = [cycle_legs(c, pools) for c in cycles]
    search: Callable[..., list[int]] = getattr(mixed_sizing, "coarse_middle_search")  # noqa: B009
    searched: list[int] = []

    def watched(*args: object, **kwargs: object) -> list[int]:
        searched.append(1)
        return search(*args, **kwargs)

    setattr(mixed_sizing, "coarse_middle_search", watched)  # noqa: B010
    answers, groups = {}, {}
    for i, path in enumerate(paths):
        searched.clear()
        trade = mixed_sizing.size_mixed(path, MAX_INPUT)
        if trade is not None:
            answers[i] = [trade.amount_in, trade.profit]
            groups[i] = f"{len(path)}-pool" + (" coarse" if searched else "")
    setattr(mixed_sizing, "coarse_middle_search", search)  # noqa: B010
    times: dict[int, list[float]] = {i: [] for i in answers}
    gc.disable()
    for _ in range(repeats):
        for i in answers:
            start = time.perf_counter()
            mixed_sizing.size_mixed(paths[i], MAX_INPUT)
            times[i].append((time.perf_counter() - start) * 1e6)
    return {"source": mixed_sizing.__file__, "answers": answers, "groups": groups, "times": times}


def group_rows(
    times: dict[str, list[float]], groups: dict[str, str], stat: Callable[[Sequence[float]], float]
) -> dict[str, tuple[float, float, int]]:
    """Per group: (p50, p95, n cycles) over the cycles' `stat` of their runs."""
    rows = {}
    for name, kinds in GROUPS.items():
        values = [stat(ts) for i, ts in times.items() if groups[i] in kinds]
        if values:
            rows[name] = (quantile(values, 0.5), quantile(values, 0.95), len(values))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="git revision of the old side")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--side", help=argparse.SUPPRESS)  # internal: one side's process
    args = parser.parse_args()
    if args.side:
        Path(args.side).write_text(json.dumps(measure_side(REPEATS)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "base.tar"
        subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), args.base,
                        "libs/common"], check=True)  # fmt: skip
        with tarfile.open(archive) as tar:
            tar.extractall(Path(tmp) / "base", filter="data")
        sources = {"old": Path(tmp) / "base" / "libs" / "common", "new": REPO / "libs" / "common"}
        sides: dict[str, dict[str, object]] = {}
        times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
        loads = []
        for _ in range(args.rounds):
            for side, source in sources.items():
                out = Path(tmp) / f"{side}.json"
                env = dict(os.environ, PYTHONPATH=f"{source}{os.pathsep}{REPO}")
                subprocess.run([sys.executable, "-m", "bench.sizing_ab", "--side", str(out)],
                               env=env, check=True, cwd=REPO)  # fmt: skip
                sides[side] = json.loads(out.read_text())
                assert str(sides[side]["source"]).startswith(str(source)), sides[side]["source"]
                for i, ts in sides[side]["times"].items():  # type: ignore[attr-defined]
                    times[side].setdefault(i, []).extend(ts)
            loads.append(os.getloadavg()[0])
    if sides["old"]["answers"] != sides["new"]["answers"]:
        print("answers differ between base and work tree", file=sys.stderr)
        return 1
    groups: dict[str, str] = sides["new"]["groups"]  # type: ignore[assignment]
    runs = args.rounds * REPEATS
    print(f"mixed sizing, {args.base} (old) vs work tree (new); answers equal on all "
          f"{len(groups)} profitable cycles; 1-min load average per round: "
          f"{', '.join(f'{x:.2f}' for x in loads)}")  # fmt: skip
    for label, stat in (("min", min), ("median", statistics.median)):
        print(f"per-cycle {label} of {runs} runs, then p50 / p95 over cycles (µs):")
        old, new = (group_rows(times[s], groups, stat) for s in ("old", "new"))
        for name, (p50, p95, n) in new.items():
            print(f"  {name} (n={n}): old {old[name][0]:.1f} / {old[name][1]:.1f}"
                  f" | new {p50:.1f} / {p95:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
