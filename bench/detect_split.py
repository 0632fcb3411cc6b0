"""Drivers that run the detect service under a profiler, for bench/detect_service_ab.py.

`SPLIT`: process-time counters (the main thread's own, `time.thread_time`: the metrics
server's thread is not in them) around the parts of a pending trigger's path, in the service
process as `make run` starts it; SIGUSR1 writes the totals as JSON to the path given, so a
bench step's share is the difference of two snapshots. Each wrapper costs ~1-2 µs a call, so
the parts read high by that and the sum of nested parts overlaps: they split, they do not add
up. Async parts are ones that do not suspend (a publish does not wait unless the client's
buffer is full), so their counter is their own CPU; `_run_batch` may suspend and is marked so.
`PROFILED`: the whole process under cProfile on process time, written at exit.
"""

from __future__ import annotations

SPLIT = """
import asyncio, functools, gc, importlib, json, os, runpy, signal, sys, time
out = sys.argv.pop(1)
clock = time.thread_time
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

mod = importlib.import_module
svc, con = mod("services.detect.service"), mod("mev_common.consumer")
path = mod("services.detect.pending_path")  # the pending-swap trigger's own calls
fast, messages = mod("mev_common.message_fast"), mod("mev_common.messages")
pubacks, bus, metrics = mod("mev_common.pubacks"), mod("mev_common.bus"), mod("mev_common.metrics")
Client, Msg = mod("nats.aio.client").Client, mod("nats.aio.msg").Msg
Parser = mod("nats.protocol.parser").Parser
targets = [
    (svc.Detector, "on_pending", "on_pending"), (svc.Detector, "search", "search"),
    (svc.Detector, "withdraw", "withdraw"), (svc.Detector, "publish", "publish"),
    (path, "to_opportunity", "to_opportunity"), (path, "decode_pending", "decode_pending"),
    (svc, "apply_pending", "apply_pending"), (path, "with_ahead", "with_ahead"),
    (con, "decode", "decode PendingTx"), (con, "envelope_of", "envelope_of"),
    (con.PullConsumer, "_run_batch", "consumer._run_batch (may suspend)"),
    (Client, "_process_msg", "nats _process_msg"), (Client, "publish", "nats publish"),
    (Parser, "parse", "nats parse (incl. _process_msg)"), (Msg, "ack", "msg.ack"),
    (pubacks.PubAcks, "send", "pubacks.send"), (pubacks.PubAcks, "_on_ack", "pubacks._on_ack"),
    (bus.Bus, "publish_core", "bus.publish_core"), (bus, "encode", "bus encode"),
    (metrics.SampledHistogram, "observe", "histogram observe"),
    (messages.PendingTx, "model_validate", "PendingTx.model_validate (slow path)"),
]
targets += [(fast, n, "fast." + n) for n in ("pending_tx", "_address", "_hex_data", "construct")]
targets += [(svc.PendingBook, n, "book." + n) for n in
            ("add", "doomed_by", "crowded", "queued_behind", "queued_txs", "crowders", "published")]
for owner, name, label in targets:
    wrap(owner, name, label)
messages._FAST[messages.PendingTx] = fast.pending_tx  # the wrapped one
started = [0.0]

def on_gc(phase, info):
    if phase == "start":
        started[0] = clock()
    else:
        spent["gc"] = spent.get("gc", 0.0) + clock() - started[0]
        calls["gc"] = calls.get("gc", 0) + 1

gc.callbacks.append(on_gc)

def dump(*_):
    spent["process (all threads)"] = time.process_time()
    spent["main thread"] = clock()
    with open(out + ".tmp", "w") as f:
        json.dump({"spent": spent, "calls": calls}, f)
    os.replace(out + ".tmp", out)

signal.signal(signal.SIGUSR1, dump)
runpy.run_module("services.detect", run_name="__main__")
"""

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
