"""`python -m bench.detect_ab --base PATH [--n 3000] [--runs 4]`: detect's CPU per pending
trigger in process (bench/detect_profile.py's path: no NATS, no chain), this checkout against
another (e.g. a worktree of main), run after run alternating, and the same decisions checked.

Why two checkouts and not two flags: a change to detect's hot path touches several modules, and
the claim to check is "the whole path, before against after". Each run is a fresh interpreter
in its checkout, fed the same seeded real backrun candidates (bench/swaps.py); its CPU per
trigger is process time (what others' load on a shared machine barely moves), and a digest of
every message it published (encoded as the bus encodes it, in order) shows whether both sides
decided the same: the same opportunities, ids, amounts and withdrawals, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]

# Run in the checkout under test (its own bench.detect_profile and detect): prints one JSON line.
DRIVER = """
import asyncio, hashlib, json, sys, time
from bench import detect_profile
from bench.swaps import pending_swaps
from mev_common.messages import encode
n, seed = int(sys.argv[1]), int(sys.argv[2])
found, deployment, bus = detect_profile.detector()
digest, sent = hashlib.sha256(), [0]
publish = bus.publish
async def record(subject, message, **kw):
    digest.update(subject.encode() + b"\\0" + encode(message) + b"\\0")
    sent[0] += 1
    await publish(subject, message, **kw)
bus.publish = record
payloads = pending_swaps(deployment, n + 200, seed=seed)
asyncio.run(detect_profile.feed(found, payloads[:200]))
cpu0 = time.process_time()
samples = asyncio.run(detect_profile.feed(found, payloads[200:]))
cpu = time.process_time() - cpu0
samples.sort()
import mev_common, services.detect.search as search
where = [mev_common.__file__, search.__file__]
print(json.dumps({"cpu_us": cpu / n * 1e6, "p50_us": samples[len(samples) // 2],
                  "sent": sent[0], "digest": digest.hexdigest(), "where": where}))
"""


def run_once(checkout: Path, n: int, seed: int) -> dict[str, Any]:
    python = checkout / ".venv" / "bin" / "python"
    python = python if python.exists() else Path(sys.executable)
    # the checkout's own libraries first (a copy without a venv runs on this one's)
    paths = [checkout, checkout / "libs" / "common", checkout / "libs" / "ops"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    out = subprocess.run(
        [str(python), "-c", DRIVER, str(n), str(seed)],
        cwd=checkout, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if not all(str(path).startswith(str(checkout)) for path in result["where"]):
        raise SystemExit(f"{checkout} ran another checkout's code: {result['where']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (before)")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    sides = {"before": args.base.resolve(), "after": HERE}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    digests: dict[str, set[str]] = {side: set() for side in sides}
    for i in range(args.runs):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for side in order:
            got = run_once(sides[side], args.n, args.seed)
            cpu[side].append(float(got["cpu_us"]))
            digests[side].add(f"{got['digest']} ({got['sent']} messages)")
            load = os.getloadavg()[0]
            print(f"run {i + 1} {side}: {float(got['cpu_us']):.0f} µs a trigger "
                  f"(p50 {float(got['p50_us']):.0f}), {got['sent']} messages, load {load:.1f}",
                  flush=True)  # fmt: skip
    for side in sides:
        values = sorted(cpu[side])
        print(f"{side}: median {statistics.median(values):.0f} µs a trigger over {len(values)} "
              f"runs of {args.n} ({', '.join(f'{v:.0f}' for v in values)})")  # fmt: skip
    same = digests["before"] == digests["after"] and len(digests["after"]) == 1
    print(f"same messages on both sides: {same} ({sorted(digests['after'])[0]})")
    ratio = statistics.median(cpu["after"]) / statistics.median(cpu["before"])
    print(f"after / before: {ratio:.2f}")
    if not same:
        raise SystemExit(f"the two sides published different messages: {digests}")


if __name__ == "__main__":
    main()
