"""The stage skeleton and the Bus methods services use instead of the client, on a real
nats-server: core publish/subscribe (a bad payload counted and skipped), the last payload of a
stream subject, KV buckets, and the stage's task lifetimes (drain, cancel, close order, a
crash or a refusal ending the stage as itself)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mev_common import metrics, subjects
from mev_common.bus import Bus
from mev_common.messages import Block, Withdrawal, encode
from mev_common.runtime import RefuseToStart, Runtime
from mev_common.settings import load_settings
from mev_common.stage import DRAIN_S, open_stage

from tests.support.stack import write_config

CHAIN = 31337


def runtime(bus: Bus, tmp: Path) -> Runtime:
    url = f"nats://{bus.nc.connected_url.netloc}"
    settings = load_settings(write_config(tmp / "stage", url, CHAIN))
    return Runtime(service="detect", settings=settings, bus=bus, instance="stage-test")


async def test_core_publish_reaches_a_subscriber_and_a_bad_payload_is_counted(bus: Bus) -> None:
    got: list[Withdrawal] = []
    arrived = asyncio.Event()

    async def on_withdrawal(message: Withdrawal) -> None:
        got.append(message)
        arrived.set()

    bad = metrics.ERRORS.labels(kind="bad_withdrawal")
    bad_before = bad._value.get()
    sub = await bus.subscribe_core(subjects.withdrawals(CHAIN), Withdrawal, on_withdrawal)
    sent = Withdrawal(opportunity_id="opp-1", chain_id=CHAIN, reason="crowded")
    await bus.nc.publish(subjects.withdrawals(CHAIN), b"{not json")
    await bus.publish_core(subjects.withdrawals(CHAIN), sent)
    await asyncio.wait_for(arrived.wait(), 5)
    await sub.unsubscribe()
    assert got == [sent]
    assert bad._value.get() - bad_before == 1


async def test_last_payload_is_none_on_an_empty_subject_then_the_newest(bus: Bus) -> None:
    subject = subjects.blocks(CHAIN + 1)
    assert await bus.last_payload("BLOCKS", subject) is None
    blocks = [
        Block(chain_id=CHAIN + 1, number=n, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}",
              timestamp=1_700_000_000 + n, base_fee_per_gas=7, logs=[])
        for n in (1, 2)
    ]  # fmt: skip
    for block in blocks:
        await bus.publish(subject, block, msg_id=block.hash, trace="t", seen_ns=1)
    assert await bus.last_payload("BLOCKS", subject) == encode(blocks[1])


async def test_key_value_creates_once_with_its_ttl(bus: Bus) -> None:
    first = await bus.key_value("stage-test-kv", history=1, ttl_s=3.0)
    await first.put("k", b"v")
    again = await bus.key_value("stage-test-kv", history=1, ttl_s=3.0)
    assert (await again.get("k")).value == b"v"  # the same bucket, not a fresh one
    status = await again.status()
    assert (status.ttl, status.history) == (3.0, 1)


async def test_stage_drains_cancels_and_closes_in_order(bus: Bus, tmp_path: Path) -> None:
    rt = runtime(bus, tmp_path)
    events: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("daemon cancelled")
            raise

    async def finishes_its_step() -> None:
        await rt.stop.wait()
        await asyncio.sleep(0.2)  # e.g. release a lease: within DRAIN_S
        events.append("drained")

    async with open_stage(rt) as stage:
        stage.spawn(forever(), "daemon")
        stage.spawn(finishes_its_step(), "drainer", drain=True)
        stage.on_close(lambda: events.append("closed first-opened"))
        stage.on_close(lambda: events.append("closed last-opened"))
        for _ in range(50):  # short tasks are forgotten once done: a long run spawns many
            await stage.spawn(asyncio.sleep(0), "short", drain=True)
        await asyncio.sleep(0.1)
        assert "rpc" in rt.checks
        assert len(stage._draining) == 1  # the drainer only
    assert rt.stop.is_set() and not rt.ready
    assert events == ["daemon cancelled", "drained", "closed last-opened", "closed first-opened"]


async def test_a_drain_task_that_overstays_is_cancelled(bus: Bus, tmp_path: Path) -> None:
    rt = runtime(bus, tmp_path)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with open_stage(rt) as stage:
        stage.spawn(asyncio.Event().wait(), "stuck", drain=True)
    assert DRAIN_S <= loop.time() - started < DRAIN_S + 2.0


async def test_a_crashed_background_task_ends_the_stage_as_itself(bus: Bus, tmp_path: Path) -> None:
    rt = runtime(bus, tmp_path)

    async def crash() -> None:
        raise ValueError("loop broke")

    with pytest.raises(ValueError, match="loop broke"):
        async with open_stage(rt) as stage:
            stage.spawn(crash(), "crasher")
            await rt.stop.wait()  # never set by the test: the crash must end the body


async def test_a_refusal_in_the_body_leaves_as_itself(bus: Bus, tmp_path: Path) -> None:
    rt = runtime(bus, tmp_path)
    with pytest.raises(RefuseToStart, match="not the owner"):
        async with open_stage(rt):
            raise RefuseToStart("not the owner")
