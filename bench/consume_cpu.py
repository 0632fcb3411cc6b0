"""`python -m bench.consume_cpu [--rate 1000] [--n 3000] [--concurrency 8]`: the bus's own CPU
per message on detect's path (pull a mempool-sized message, publish one result, ack the input),
without detect's search, both ways side by side on one nats-server: `awaited` (a task per
message, each publish's ack awaited before the input's ack: what simulate and submit run) and
`batched` (detect since 2026-11-30: a fetched batch handled in one task, the results' stream
acks awaited together, mev_common.consumer / mev_common.pubacks).

The consumer runs in this process (process CPU ÷ messages); the feed is a child process paced
at `--rate` (0: the whole backlog published before the consumer starts).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from mev_common.bus import Bus, Envelope
from mev_common.consumer import PullConsumer
from mev_common.messages import Withdrawal, encode
from mev_common.subjects import ConsumerSpec, StreamSpec
from mev_ops.nats_server import start_embedded_nats

INPUT = StreamSpec("CPUIN", ("cpuin.>",), max_age_s=600)
OUTPUT = StreamSpec("CPUOUT", ("cpuout.>",), max_age_s=600)
FEED = r"""
import asyncio, sys, time, nats
async def main(url, subject, rate, n, body):
    nc = await nats.connect(url)
    js = nc.jetstream()
    started, i = time.perf_counter(), 0
    while i < n:
        due = n if rate <= 0 else min(n, int((time.perf_counter() - started) * rate) + 1)
        while i < due:
            headers = {"Nats-Msg-Id": f"{subject}-{i}", "Mev-Seen-Ns": str(time.time_ns())}
            await js.publish(subject, body, headers=headers)
            i += 1
        await asyncio.sleep(0.0005)
    await nc.close()
asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]),
                 open(sys.argv[5], "rb").read()))
"""


async def measure(
    url: str, body: Path, mode: str, rate: float, n: int, concurrency: int, run_no: int
) -> float:
    """Consumer CPU µs per message in `mode` ("awaited" or "batched"), run `run_no` (its own
    subject and durable: message ids are deduplicated across runs)."""
    bus = await Bus.connect(url, f"consume-cpu-{mode}", attempts=3)
    await bus.ensure_streams([INPUT, OUTPUT])
    subject = f"cpuin.{mode}{run_no}"
    result = Withdrawal(opportunity_id="x" * 64, chain_id=1, reason="r" * 200)

    async def handler(env: Envelope[Withdrawal]) -> None:
        kw = {"msg_id": f"{mode}:{env.msg_id}", "trace": env.trace, "seen_ns": env.seen_ns}
        if mode == "batched":
            env.defer(await bus.publish_later(f"cpuout.{mode}", result, **kw))  # type: ignore[arg-type]
        else:
            await bus.publish(f"cpuout.{mode}", result, **kw)  # type: ignore[arg-type]

    consumer = PullConsumer(
        bus=bus,
        spec=ConsumerSpec(INPUT.name, f"cpu-{mode}{run_no}", subject, 64),
        model=Withdrawal,
        handler=handler,
        stage=mode,
        chain_id=1,
        concurrency=concurrency,
        batched=mode == "batched",
    )
    feed = [sys.executable, "-c", FEED, url, subject, str(rate), str(n), str(body)]
    if rate <= 0:
        backlog = await asyncio.create_subprocess_exec(*feed)
        await backlog.wait()
    stop = asyncio.Event()
    run = asyncio.create_task(consumer.run(stop))
    await asyncio.sleep(0.3)
    cpu = time.process_time()
    child = await asyncio.create_subprocess_exec(*feed) if rate > 0 else None
    while consumer.processed < n:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    used = time.process_time() - cpu
    if child is not None:
        await child.wait()
    stop.set()
    await run
    await bus.close()
    return used / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="0: a backlog")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consume-cpu-") as tmp:
        body = Path(tmp) / "body"
        payload = Withdrawal(opportunity_id="y" * 64, chain_id=1, reason="z" * 600)
        body.write_bytes(encode(payload))
        server = start_embedded_nats(store_dir=Path(tmp) / "nats")
        try:
            for run_no in range(args.runs):
                for mode in ("awaited", "batched"):
                    us = asyncio.run(
                        measure(server.url, body, mode, args.rate, args.n, args.concurrency, run_no)
                    )
                    print(
                        f"{mode}: {us:.0f} µs CPU a message (n={args.n}, rate {args.rate:g}/s, "
                        f"load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
