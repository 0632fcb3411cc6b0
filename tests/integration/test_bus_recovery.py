"""The bus after NATS comes back without its store: what a service declared is declared again,
and a control watch still sees the operator's next emergency stop (a watch left on the lost
stream would wait for sequence numbers the new stream reaches only much later)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

from mev_common.bus import Bus
from mev_common.control import (
    EMERGENCY_STOP,
    ControlState,
    control_key,
    ensure_control_bucket,
    watch_control,
)
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats

CHAIN = 999


@contextlib.asynccontextmanager
async def broker(tmp: Path) -> AsyncIterator[tuple[EmbeddedNats, Bus]]:
    server = start_embedded_nats(store_dir=tmp / "nats")
    bus = await Bus.connect(server.url, "recovery-test", attempts=3)
    try:
        yield server, bus
    finally:
        await bus.close()
        server.cleanup()


async def restart_on_empty_store(server: EmbeddedNats, bus: Bus) -> None:
    """kill -9, wipe the store, start again; return once the bus has re-declared."""
    server.kill()
    shutil.rmtree(server.store_dir)
    server.start()
    await wait_until(lambda: bus.generation >= 1, 10.0)


async def wait_until(cond, timeout_s: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not cond():
        assert time.monotonic() - started < timeout_s, "condition not met in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_control_watch_survives_a_restart_on_an_empty_store(tmp_path: Path) -> None:
    stop = asyncio.Event()
    state = ControlState()

    async def on_change(name: str, st: ControlState) -> None:
        pass

    async with broker(tmp_path) as (server, bus):
        await bus.declare(lambda: ensure_control_bucket(bus.js))
        watch = asyncio.create_task(
            watch_control(bus.js, CHAIN, state, on_change, stop, generation=lambda: bus.generation)
        )
        kv = await ensure_control_bucket(bus.js)
        for i in range(20):  # the old stream's sequence moves well past the new one's
            await kv.put(control_key(CHAIN, "rpc_rate_factor"), f"1.{i}".encode())
        await kv.put(control_key(CHAIN, EMERGENCY_STOP), b"true")
        await wait_until(lambda: state.emergency_stop, 5.0)
        await kv.put(control_key(CHAIN, EMERGENCY_STOP), b"false")
        await wait_until(lambda: not state.emergency_stop, 5.0)

        await restart_on_empty_store(server, bus)  # re-declared: the bucket is back
        kv = await ensure_control_bucket(bus.js)
        await kv.put(control_key(CHAIN, EMERGENCY_STOP), b"true")
        took = await wait_until(lambda: state.emergency_stop, 5.0)
        assert took < 5.0
        stop.set()
        await asyncio.wait_for(watch, 5.0)


async def test_pull_and_ordered_consumers_resume_after_an_empty_store_restart(
    tmp_path: Path,
) -> None:
    """Both kinds of consumer get every message published after NATS returns without its
    store, within 3 s, with no process restart."""
    from mev_common.bus import Envelope
    from mev_common.consumer import PullConsumer
    from mev_common.messages import Withdrawal
    from mev_common.ordered import subscribe_ordered
    from mev_common.subjects import ConsumerSpec, StreamSpec
    from nats.js.api import DeliverPolicy

    stop = asyncio.Event()
    pulled: list[str] = []
    ordered: list[str] = []

    async def on_pull(env: Envelope[Withdrawal]) -> None:
        pulled.append(env.message.opportunity_id)

    async def on_ordered(env: Envelope[Withdrawal]) -> None:
        ordered.append(env.message.opportunity_id)

    spec = StreamSpec("RECOVERY", ("rec.>",), max_age_s=600)
    async with broker(tmp_path) as (server, bus):

        async def publish(subject: str, name: str) -> None:
            msg = Withdrawal(opportunity_id=name, chain_id=CHAIN, reason="test")
            await bus.publish(subject, msg, msg_id=name, trace=name, seen_ns=time.time_ns())

        await bus.declare(lambda: bus.ensure_streams([spec]))
        consumer = PullConsumer(
            bus=bus,
            spec=ConsumerSpec("RECOVERY", "rec-pull", "rec.pull", 16),
            model=Withdrawal,
            handler=on_pull,
            stage="test",
            chain_id=CHAIN,
        )
        task = asyncio.create_task(consumer.run(stop))
        reader = await subscribe_ordered(
            bus, "rec.ordered", Withdrawal, on_ordered, "test", CHAIN, DeliverPolicy.ALL
        )
        for i in range(30):  # sequences well past what the new stream will have
            await publish("rec.pull", f"p{i}")
            await publish("rec.ordered", f"o{i}")
        await wait_until(lambda: len(pulled) == 30 and len(ordered) == 30, 10.0)

        await restart_on_empty_store(server, bus)
        started = time.monotonic()
        for i in range(3):
            while True:  # the first publishes may race the re-declare
                try:
                    await publish("rec.pull", f"after-p{i}")
                    await publish("rec.ordered", f"after-o{i}")
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        await wait_until(
            lambda: (
                pulled[30:] == [f"after-p{i}" for i in range(3)]
                and ordered[30:] == [f"after-o{i}" for i in range(3)]
            ),
            3.0,  # an ordered reader that waits out its 5 s (+-25%) pause misses this
        )
        assert time.monotonic() - started < 5.0
        await reader.unsubscribe()
        stop.set()
        await asyncio.wait_for(task, 5.0)
