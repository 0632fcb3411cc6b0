"""Cycle sizing, a base commit's against the work tree's (or another commit's), side by side.

`python -m bench.sizing_ab [--kind mixed|v2] [--base REV] [--new REV] [--rounds N]`: extracts
libs/common at REV (default HEAD; --new likewise, else the work tree) with `git archive`, then
alternates rounds of the two (each round a fresh process per side, the same cycles, which side
goes first alternating too), so load on the shared cores falls on both alike. `mixed`: size_mixed
on bench amm_v3_peer's case set, groups 2-pool, 3-pool, and 3-pool split by whether the coarse
middle search runs (through two 6-decimal tokens). `v2`: size_trade (default and old default)
on bench amm_peer's cycles (scenario 5). Per cycle it keeps the min and the median over all runs,
and reports p50 / p95 (nearest rank) over cycles with n, per group. It fails if any cycle's
answer earns less on the new side, or it drops a trade: a speed-up must not cost a wei (it may
find more, as the exact V2 middle search of 2026-12-02 does). Why not a bench scenario: the base
side needs a second copy of mev_common.
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
V2_GROUPS: dict[str, tuple[str, ...]] = {
    f"{n}-pool {variant}": (f"{n}-pool {variant}", f"{n}-pool coarse {variant}")
    for variant in ("default", "old default")
    for n in (2, 3)
} | {
    f"3-pool via two 6-decimal tokens {variant}": (f"3-pool coarse {variant}",)
    for variant in ("default", "old default")
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


def measure_v2_side(repeats: int) -> dict[str, object]:
    """This process's V2 size_trade on bench amm_peer's cycles (scenario 5), default and old
    default, each cycle that either finds profitable; keys "<cycle> <variant>"."""
    import gc

    from mev_common.amm import sizing
    from mev_common.amm.cycles import cycle_reserves

    from bench.scenarios.amm_peer import MAX_INPUT, TOKEN_ADDRESS, VARIANTS, make_cases

    pools, cycles, _ = make_cases(24, 0)  # the scenario's 24 seeds; swaps do not move pools
    by_address = {p.address: p for p in pools}
    six = {TOKEN_ADDRESS["USDC"], TOKEN_ADDRESS["USDT"]}
    variants = {k: v for k, v in VARIANTS.items() if k != "exact"}
    answers, groups, calls = {}, {}, {}
    for i, cycle in enumerate(cycles):
        trades = {k: sizing.size_trade(cycle_reserves(cycle, by_address), MAX_INPUT, **o)
                  for k, o in variants.items()}  # fmt: skip
        if all(t is None for t in trades.values()):
            continue
        coarse = len(cycle.hops) == 3 and all(h.token_out in six for h in cycle.hops[:2])
        kind = f"{len(cycle.hops)}-pool" + (" coarse" if coarse else "")
        for variant, trade in trades.items():
            key = f"{i} {variant}"
            answers[key] = [trade.amount_in, trade.profit] if trade else None
            groups[key] = f"{kind} {variant}"
            calls[key] = (cycle, variants[variant])
    times: dict[str, list[float]] = {k: [] for k in answers}
    gc.disable()
    for _ in range(repeats):
        for key, (cycle, options) in calls.items():  # as the scenario times it
            start = time.perf_counter()
            sizing.size_trade(cycle_reserves(cycle, by_address), MAX_INPUT, **options)
            times[key].append((time.perf_counter() - start) * 1e6)
    return {"source": sizing.__file__, "answers": answers, "groups": groups, "times": times}


def group_rows(
    times: dict[str, list[float]],
    groups: dict[str, str],
    stat: Callable[[Sequence[float]], float],
    named: dict[str, tuple[str, ...]] = GROUPS,
) -> dict[str, tuple[float, float, int]]:
    """Per group: (p50, p95, n cycles) over the cycles' `stat` of their runs."""
    rows = {}
    for name, kinds in named.items():
        values = [stat(ts) for i, ts in times.items() if groups[i] in kinds]
        if values:
            rows[name] = (quantile(values, 0.5), quantile(values, 0.95), len(values))
    return rows


def compare_answers(
    old: dict[str, list[int] | None], new: dict[str, list[int] | None]
) -> dict[str, int]:
    """Per (cycle, variant), [amount_in, profit] or None: how many the new side answers the same,
    earns more on, earns less on (behind), or drops a trade the old found (lost)."""
    verdict = {"equal": 0, "ahead": 0, "behind": 0, "lost": 0}
    for key in old.keys() | new.keys():
        before, after = old.get(key), new.get(key)
        if before == after:
            verdict["equal"] += 1
        elif after is None:
            verdict["lost"] += 1
        elif before is None or after[1] > before[1]:
            verdict["ahead"] += 1
        else:
            verdict["behind"] += 1
    return verdict


def _extract(rev: str, into: Path) -> Path:
    """libs/common at `rev`, unpacked under `into`."""
    archive = into.with_suffix(".tar")
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), rev, "libs/common"],
                   check=True)  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "libs" / "common"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("mixed", "v2"), default="mixed")
    parser.add_argument("--base", default="HEAD", help="git revision of the old side")
    parser.add_argument("--new", help="git revision of the new side (default: the work tree)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--side", help=argparse.SUPPRESS)  # internal: one side's process
    args = parser.parse_args()
    if args.side:
        measure = measure_v2_side if args.kind == "v2" else measure_side
        Path(args.side).write_text(json.dumps(measure(REPEATS)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"old": _extract(args.base, Path(tmp) / "old"), "new": REPO / "libs" / "common"}
        if args.new:
            sources["new"] = _extract(args.new, Path(tmp) / "new")
        sides: dict[str, dict[str, object]] = {}
        times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
        loads = []
        for n in range(args.rounds):
            # old first in even rounds, new first in odd ones: a load that rises (or falls) over
            # the run must not fall on one side more than the other
            for side, source in list(sources.items())[:: 1 if n % 2 == 0 else -1]:
                out = Path(tmp) / f"{side}.json"
                env = dict(os.environ, PYTHONPATH=f"{source}{os.pathsep}{REPO}")
                subprocess.run([sys.executable, "-m", "bench.sizing_ab", "--side", str(out),
                                "--kind", args.kind], env=env, check=True, cwd=REPO)  # fmt: skip
                sides[side] = json.loads(out.read_text())
                assert str(sides[side]["source"]).startswith(str(source)), sides[side]["source"]
                for i, ts in sides[side]["times"].items():  # type: ignore[attr-defined]
                    times[side].setdefault(i, []).extend(ts)
            loads.append(os.getloadavg()[0])
    verdict = compare_answers(sides["old"]["answers"], sides["new"]["answers"])  # type: ignore[arg-type]
    if verdict["behind"] or verdict["lost"]:
        print(f"the new side is behind the old: {verdict}", file=sys.stderr)
        return 1
    groups: dict[str, str] = sides["new"]["groups"]  # type: ignore[assignment]
    runs = args.rounds * REPEATS
    named = V2_GROUPS if args.kind == "v2" else GROUPS
    print(f"{args.kind} sizing, {args.base} (old) vs {args.new or 'work tree'} (new); of "
          f"{len(groups)} (cycle, variant)s the new answer equals the old on {verdict['equal']}, "
          f"earns more on {verdict['ahead']} (never less); 1-min load average per round: "
          f"{', '.join(f'{x:.2f}' for x in loads)}")  # fmt: skip
    for label, stat in (("min", min), ("median", statistics.median)):
        print(f"per-cycle {label} of {runs} runs, then p50 / p95 over cycles (µs):")
        old, new = (group_rows(times[s], groups, stat, named) for s in ("old", "new"))
        for name, (p50, p95, n) in new.items():
            print(f"  {name} (n={n}): old {old[name][0]:.1f} / {old[name][1]:.1f}"
                  f" | new {p50:.1f} / {p95:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
