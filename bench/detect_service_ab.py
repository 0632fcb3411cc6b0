"""`python -m bench.detect_service_ab --base PATH`: the real detect service through NATS, this
checkout against another (e.g. a copy of main), alternating on one devnet stack, with the
messages each side published compared.

Why: bench/detect_ab.py compares detect's pure path in process; what a trigger costs through
NATS (decode, the pull consumer, publishes, acks, metrics, asyncio) is only seen in the service
process, and on a shared 2-core machine only side by side in one run means anything. Each side
runs scenario 2's steps (bench/scenarios/throughput.py: bench/swaps.py's real backrun candidates
paced into `mev.<chain>.mempool`) in a fresh detect process started from its checkout, the sides
alternating round after round on the same stack; both see the same head (the block ingest
published, replayed to each new process) and the same payloads, so both must publish the same
opportunities and withdrawals (recorded off core NATS, compared in order per round). Per step:
detect's process CPU ÷ triggers and exact seen → published samples (p50/p95 with n).
`--spy RATE` samples that step of every run with py-spy (if on PATH or --py-spy) and prints
where the process's time went, by own time and by a few inclusive groups.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mev_common import subjects
from mev_common.bus import Bus
from mev_common.subjects import HEADER_MSG_ID, HEADER_SEEN_NS, HEADER_TRACE
from tests.support.stack import ServiceProcess

from bench.pacing import paced
from bench.scenarios.throughput import HISTOGRAM, TARGET_MS, detect_counts
from bench.stack import CHAIN_ID, Stack, devnet_stack
from bench.stats import quantile
from bench.swaps import pending_swaps

HERE = Path(__file__).resolve().parents[1]
WARM = 200


def _cpu_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU of `pid` (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


# `--cprofile`: detect run under cProfile on process time, its stats written at exit
PROFILED = """
import cProfile, runpy, sys, time
out = sys.argv.pop(1)
profiler = cProfile.Profile(time.process_time)
profiler.enable()
try:
    runpy.run_module("services.detect", run_name="__main__")
finally:
    profiler.disable()
    profiler.dump_stats(out)
"""


# `--split`: detect with process-time counters around its parts (wrappers ~1 µs a call), the
# totals written as JSON at exit; async parts are ones that do not suspend (publishes do not
# wait unless the client's buffer is full), so their counter is their own CPU
SPLIT = """
import asyncio, gc, json, runpy, sys, time, functools, importlib
out = sys.argv.pop(1)
clock = time.thread_time  # the main thread's own: the metrics server's thread is not in it
spent, calls = {}, {}
def wrap(owner, name, label):
    fn = getattr(owner, name)
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def timed(*a, **k):
            t = clock()
            try:
                return await fn(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + clock() - t
                calls[label] = calls.get(label, 0) + 1
    else:
        @functools.wraps(fn)
        def timed(*a, **k):
            t = clock()
            try:
                return fn(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + clock() - t
                calls[label] = calls.get(label, 0) + 1
    setattr(owner, name, timed)
svc = importlib.import_module("services.detect.service")
con = importlib.import_module("mev_common.consumer")
from nats.aio.client import Client
from nats.aio.msg import Msg
from mev_common import metrics
targets = [(svc.Detector, "on_pending", "on_pending"), (svc.Detector, "search", "search"),
           (svc.Detector, "withdraw", "withdraw"), (svc.Detector, "publish", "publish"),
           (svc, "to_opportunity", "to_opportunity"), (svc, "decode_pending", "decode_pending"),
           (svc, "apply_pending", "apply_pending"), (svc, "with_ahead", "with_ahead"),
           (con, "decode", "decode PendingTx"), (con, "envelope_of", "envelope_of"),
           (Client, "_process_msg", "nats _process_msg"), (Msg, "ack", "msg.ack"),
           (Client, "publish", "nats publish"),
           (metrics.SampledHistogram, "observe", "histogram observe")]
pubacks = importlib.import_module("mev_common.pubacks")
bus = importlib.import_module("mev_common.bus")
parser = importlib.import_module("nats.protocol.parser")
targets += [(pubacks.PubAcks, "send", "pubacks.send"), (pubacks.PubAcks, "_on_ack", "pubacks._on_ack"),
            (bus.Bus, "publish_core", "bus.publish_core"), (bus, "encode", "bus encode"),
            (parser.Parser, "parse", "nats parse (incl. _process_msg)"),
            (con.PullConsumer, "_run_batch", "consumer._run_batch (may suspend)")]
messages = importlib.import_module("mev_common.messages")
fast = importlib.import_module("mev_common.message_fast")
wrap(messages.PendingTx, "model_validate", "PendingTx.model_validate (slow path)")
for name in ("pending_tx", "_address", "_hash32", "_hex_data", "_big_int", "construct"):
    wrap(fast, name, "fast." + name)
messages._FAST[messages.PendingTx] = fast.pending_tx  # the wrapped one
for owner, name, label in targets:
    wrap(owner, name, label)
pending = svc.PendingBook
for name in ("add", "doomed_by", "crowded", "queued_behind", "queued_txs", "crowders", "published"):
    wrap(pending, name, "book." + name)
gc_t = [0.0]
def on_gc(phase, info):
    if phase == "start":
        gc_t[0] = clock()
    else:
        spent["gc"] = spent.get("gc", 0.0) + clock() - gc_t[0]
        calls["gc"] = calls.get("gc", 0) + 1
gc.callbacks.append(on_gc)
def dump(*_):
    spent["process"] = time.process_time()
    spent["main thread"] = clock()
    with open(out + ".tmp", "w") as f:
        json.dump({"spent": spent, "calls": calls}, f)
    import os
    os.replace(out + ".tmp", out)
import signal
signal.signal(signal.SIGUSR1, dump)
try:
    runpy.run_module("services.detect", run_name="__main__")
finally:
    dump()
"""


def start_detect(
    stack: Stack, checkout: Path, profile: Path | None = None, driver: str = PROFILED
) -> ServiceProcess:
    """Detect from `checkout` (its code first on the path, this venv's interpreter)."""
    paths = [checkout, checkout / "libs" / "common", checkout / "libs" / "ops"]
    env = {**os.environ, "MEV_INSTANCE": "detect-ab", "PYTHONPATH": os.pathsep.join(map(str, paths)),
           "MEV_LATENCY_SAMPLES_DIR": str(stack.samples_dir)}  # fmt: skip
    proc = ServiceProcess("detect", stack.config, stack.base / "detect.log")
    log = open(proc.log_path, "ab")  # noqa: SIM115 - the child owns it
    proc.proc = subprocess.Popen(
        [sys.executable, *(["-c", driver, str(profile)] if profile else ["-m", "services.detect"]),
         "--config", str(stack.config)],
        cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack.services["detect"] = proc
    proc.wait_health(200, timeout_s=90)
    return proc


class Recorder:
    """Every opportunity and withdrawal detect sends, off core NATS, in arrival order."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    async def on_msg(self, msg: object) -> None:
        self.got.append(msg.subject.encode() + b"\0" + msg.data)  # type: ignore[attr-defined]


async def step(
    stack: Stack, bus: Bus, pid: int, batch: list[tuple[str, bytes]], rate: float, tag: str,
    spy: list[str] | None,
) -> dict[str, object]:  # fmt: skip
    before = await asyncio.to_thread(detect_counts, stack, 1)
    await asyncio.to_thread(stack.latencies)
    spying = (
        subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if spy else None
    )  # noqa: E501

    async def send(i: int) -> None:
        tx_hash, payload = batch[i]
        headers = {HEADER_MSG_ID: f"{tag}:{tx_hash}", HEADER_TRACE: tx_hash,
                   HEADER_SEEN_NS: str(time.time_ns())}  # fmt: skip
        await bus.js.publish(subjects.mempool(CHAIN_ID), payload, headers=headers)

    cpu0 = _cpu_s(pid)
    achieved = await paced(len(batch), rate, send)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = await asyncio.to_thread(detect_counts, stack, 1)
        if now["processed"] - before["processed"] >= len(batch):
            break
        await asyncio.sleep(0.05)
    user, system = (b - a for a, b in zip(cpu0, _cpu_s(pid), strict=True))
    cpu = user + system
    if spying:
        spying.wait()
    after = await asyncio.to_thread(detect_counts, stack, 1)
    ms = (await asyncio.to_thread(stack.latencies)).get(("detect", HISTOGRAM, "pending"), [])
    return {"rate": rate, "sent": achieved, "cpu_us": cpu / len(batch) * 1e6, "ms": ms,
            "sys_share": system / cpu if cpu else 0.0,
            "opps": after["opportunities"] - before["opportunities"],
            "withdrawn": after["withdrawn"] - before["withdrawn"]}  # fmt: skip


async def _split(proc: ServiceProcess, path: Path | None) -> dict[str, dict[str, float]]:
    """The `--split` counters now (SIGUSR1 makes detect write them)."""
    assert path is not None
    path.unlink(missing_ok=True)
    proc.signal(signal.SIGUSR1)
    for _ in range(200):
        await asyncio.sleep(0.02)
        if path.exists():
            return json.loads(path.read_text())  # type: ignore[no-any-return]
    raise RuntimeError("detect wrote no --split counters")


def _split_report(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], n: int) -> None:
    for label in sorted(b["spent"], key=lambda k: -(b["spent"][k] - a["spent"].get(k, 0.0))):
        us = (b["spent"][label] - a["spent"].get(label, 0.0)) / n * 1e6
        count = b["calls"].get(label, 0) - a["calls"].get(label, 0)
        print(f"    {us:7.1f} µs/trigger  {label} ({count} calls)")


def spy_report(path: Path, top: int) -> None:
    """Own time by function and a few inclusive groups, from py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    groups = {"on_pending": "on_pending (", "search": "search (services/detect/search.py",
              "publish_later": "publish_later (", "withdraw": "withdraw (",
              "decode": "decode (", "_settle": "_settle (", "fetch": "fetch (mev_common/pull",
              "nats _read_loop": "_read_loop (", "nats _flusher": "_flusher (",
              "gc": "gc", "prometheus": "prometheus", "observe": "observe ("}  # fmt: skip
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1].split(" (")[0] + " " + frames[-1].rpartition("/")[2]] += n
        for name, needle in groups.items():
            if any(needle in f for f in frames):
                incl[name] += n
    print(f"  py-spy: {total} samples (incl. idle)")
    for name, n in incl.most_common():
        print(f"    incl {n / total:6.1%} {name}")
    for name, n in own.most_common(top):
        print(f"    own  {n / total:6.1%} {name}")


async def run(args: argparse.Namespace) -> None:
    sides = {"before": args.base.resolve(), "after": HERE}
    rates = [float(r) for r in args.rates.split(",")]
    sizes = [int(r * args.seconds) for r in rates]
    py_spy = args.py_spy or shutil.which("py-spy")
    results: dict[str, dict[float, list[dict[str, object]]]] = {
        s: {r: [] for r in rates} for s in sides
    }  # noqa: E501
    same = True
    with devnet_stack() as stack:
        stack.start("ingest")
        stack.rpc("anvil_mine", ["0x1"])
        bus = await Bus.connect(stack.nats.url, "bench-detect-ab", attempts=3)
        recorder = Recorder()
        await bus.nc.subscribe(subjects.all_opportunities(CHAIN_ID), cb=recorder.on_msg)
        await bus.nc.subscribe(subjects.withdrawals(CHAIN_ID), cb=recorder.on_msg)
        await asyncio.sleep(1.0)
        head = await bus.last_payload("BLOCKS", subjects.blocks(CHAIN_ID))
        assert head, "ingest published no block"
        try:
            for r in range(args.rounds):
                payloads = pending_swaps(stack.deployment, WARM + sum(sizes), seed=100 + r)
                order = list(sides) if r % 2 == 0 else list(reversed(sides))
                out: dict[str, list[bytes]] = {}
                for side in order:
                    profile, driver = None, PROFILED
                    if args.cprofile:
                        profile = args.cprofile / f"{side}-{r}.prof"
                    if args.split:
                        profile, driver = args.split / f"{side}-{r}.json", SPLIT
                    proc = start_detect(stack, sides[side], profile, driver)
                    assert proc.proc is not None
                    tag = f"{side}{r}"
                    await bus.js.publish(subjects.blocks(CHAIN_ID), head,
                                         headers={HEADER_MSG_ID: f"head:{tag}"})  # fmt: skip
                    await asyncio.sleep(0.5)
                    recorder.got = []
                    await step(stack, bus, proc.proc.pid, payloads[:WARM], 200.0, tag, None)
                    cursor = WARM
                    for rate, n in zip(rates, sizes, strict=True):
                        spy = None
                        spy_out = stack.base / f"spy-{tag}-{rate:.0f}.txt"
                        if py_spy and args.spy == rate:
                            spy = [py_spy, "record", "--pid", str(proc.proc.pid), "--rate", "250",
                                   "--duration", str(int(args.seconds)), "--format", "raw",
                                   "--nonblocking", "-o", str(spy_out)]  # fmt: skip
                        split0 = await _split(proc, profile) if args.split else None
                        got = await step(stack, bus, proc.proc.pid, payloads[cursor:cursor + n],
                                         rate, tag, spy)  # fmt: skip
                        if split0 is not None:
                            _split_report(split0, await _split(proc, profile), n)
                        cursor += n
                        results[side][rate].append(got)
                        ms = got["ms"]
                        assert isinstance(ms, list)
                        p = (f"p50 {quantile(ms, 0.5):.2f} / p95 {quantile(ms, 0.95):.2f} ms "
                             f"(n={len(ms)})") if ms else "no samples"  # fmt: skip
                        print(f"round {r + 1} {side} {rate:,.0f}/s (sent {got['sent']:,.0f}/s): "
                              f"CPU {got['cpu_us']:.0f} µs/trigger ({got['sys_share']:.0%} system); {p}; opportunities "
                              f"{got['opps']:.0f}, withdrawn {got['withdrawn']:.0f}; "
                              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
                        if spy and spy_out.exists():
                            spy_report(spy_out, args.top)
                    await asyncio.sleep(0.3)
                    out[side] = recorder.got
                    proc.signal(signal.SIGTERM)
                    proc.wait(30)
                for side, got_msgs in out.items():
                    if args.dump:
                        (args.dump / f"{side}-{r}.msgs").write_bytes(b"\n".join(got_msgs))
                    # one subscription per subject (nats-py runs each in its own task): the
                    # order is compared within a subject
                    got_msgs.sort(key=lambda m: m.partition(b"\0")[0])
                match = out["before"] == out["after"]
                same = same and match
                print(
                    f"round {r + 1}: same messages on both sides: {match} "
                    f"({len(out['after'])} after, {len(out['before'])} before)",
                    flush=True,
                )
        finally:
            await bus.close()
    for side in sides:
        for rate in rates:
            steps = results[side][rate]
            if not steps:
                continue
            cpu = statistics.median(float(s["cpu_us"]) for s in steps)  # type: ignore[arg-type]
            ms = [x for s in steps for x in s["ms"]]  # type: ignore[attr-defined]
            within = sum(x < TARGET_MS for x in ms) / len(ms) if ms else 0.0
            p95s = ", ".join(f"{quantile(s['ms'], 0.95):.2f} (n={len(s['ms'])})"  # type: ignore[arg-type]
                             for s in steps if s["ms"])  # fmt: skip
            print(f"{side} {rate:,.0f}/s: CPU median {cpu:.0f} µs/trigger over {len(steps)} "
                  f"steps; p95 per step {p95s}; pooled < 3 ms {within:.1%}")  # fmt: skip
    print(f"same messages in every round: {same}")
    if not same:
        raise SystemExit("the two sides published different messages")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (before)")
    parser.add_argument("--rates", default="500,1000")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spy", type=float, default=None, help="py-spy this rate's steps")
    parser.add_argument("--py-spy", default=None, help="the py-spy binary")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--cprofile", type=Path, default=None, help="dir: each run's cProfile")
    parser.add_argument("--split", type=Path, default=None, help="dir: --split counters")
    parser.add_argument("--dump", type=Path, default=None, help="dir: each side's messages")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
