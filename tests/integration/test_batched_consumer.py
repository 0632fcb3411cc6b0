"""The batched pull consumer (detect's input, mev_common.consumer) with pipelined publishes
(mev_common.pubacks): an input is acked only after the results its handler published are
stored, a crash mid-batch redelivers exactly the inputs not yet acked, a refused publish
retries its input, a malformed message in a batch is dead-lettered while the rest go on, and
replicas sharing the consumer handle each message exactly once. Real nats-server, no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest_asyncio
from mev_common import metrics
from mev_common.bus import Bus, Envelope
from mev_common.consumer import PullConsumer
from mev_common.envelope import Retryable
from mev_common.messages import DeadLetter, Withdrawal, decode, encode
from mev_common.subjects import HEADER_TRACE, ConsumerSpec, StreamSpec, dead
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats

from tests.support.submit_world import wait_for

CHAIN = 999
INPUT = StreamSpec("BATCHIN", ("batchin.>",), max_age_s=600)
OUTPUT = StreamSpec("BATCHOUT", ("batchout.>",), max_age_s=600)
DEAD = StreamSpec("BATCHDEAD", (f"mev.{CHAIN}.dead.>",), max_age_s=600)
SUBJECT = "batchin.x"


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    server = start_embedded_nats(store_dir=tmp_path / "nats")
    try:
        yield server
    finally:
        server.cleanup()


async def connect(server: EmbeddedNats, name: str) -> Bus:
    bus = await Bus.connect(server.url, name, attempts=3)
    await bus.ensure_streams([INPUT, OUTPUT, DEAD])
    return bus


def payload(i: int) -> bytes:
    return encode(Withdrawal(opportunity_id=str(i), chain_id=CHAIN, reason="test"))


async def send_inputs(bus: Bus, ids: range) -> None:
    for i in ids:
        await bus.js.publish(SUBJECT, payload(i), headers={"Nats-Msg-Id": f"in-{i}"})


def consumer(bus: Bus, handler: Callable, concurrency: int = 8) -> PullConsumer[Withdrawal]:
    return PullConsumer(
        bus=bus,
        spec=ConsumerSpec(INPUT.name, "batched", SUBJECT, 64),
        model=Withdrawal,
        handler=handler,
        stage="batchtest",
        chain_id=CHAIN,
        concurrency=concurrency,
        ack_wait_s=1.0,  # a crashed holder's inputs come back after 1 s
        nak_delay_s=0.05,
        fetch_timeout_s=0.2,
        batched=True,
    )


def republisher(bus: Bus, seen: list[tuple[int, int]]) -> Callable:
    """A handler that publishes one result per input (msg id out-<i>), ack deferred."""

    async def handle(env: Envelope[Withdrawal]) -> None:
        i = int(env.message.opportunity_id)
        seen.append((i, env.deliveries))
        out = Withdrawal(opportunity_id=str(i), chain_id=CHAIN, reason="result")
        done = await bus.publish_later(
            "batchout.x", out, msg_id=f"out-{i}", trace=env.trace, seen_ns=env.seen_ns
        )
        env.defer(done)

    return handle


async def stored(bus: Bus, stream: str) -> int:
    return int((await bus.js.stream_info(stream)).state.messages)


async def unacked(bus: Bus) -> int:
    info = await bus.js.consumer_info(INPUT.name, "batched")
    return int(info.num_ack_pending + info.num_pending)


async def test_a_crash_mid_batch_redelivers_exactly_the_unacked_inputs(
    server: EmbeddedNats,
) -> None:
    """Inputs 1-4 are handled and acked by a first consumer that stops cleanly. Inputs 5-12
    then come in one batch to a second, which publishes the results of 5 and 6 and dies on
    7 (cancelled, its connection closed: no ack leaves it). A third gets exactly 5-12 again
    (second delivery each, none of 1-4), and the results stream holds each result once."""
    bus = await connect(server, "first")
    seen: list[tuple[int, int]] = []
    stop = asyncio.Event()
    run = asyncio.create_task(consumer(bus, republisher(bus, seen)).run(stop))
    await send_inputs(bus, range(1, 5))
    await wait_for(lambda: len(seen) == 4)
    stop.set()
    await run
    assert await unacked(bus) == 0
    await send_inputs(bus, range(5, 13))
    await bus.close()

    crashing = await connect(server, "crashing")
    crashed: list[tuple[int, int]] = []
    forever = asyncio.Event()
    publish = republisher(crashing, crashed)

    async def dies_on_seven(env: Envelope[Withdrawal]) -> None:
        if env.message.opportunity_id == "7":
            await forever.wait()
        await publish(env)

    run = asyncio.create_task(consumer(crashing, dies_on_seven).run(asyncio.Event()))
    await wait_for(lambda: len(crashed) == 2)
    await asyncio.sleep(0.2)  # the results of 5 and 6 are stored meanwhile
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    await crashing.nc.close()
    assert [i for i, _ in crashed] == [5, 6]

    bus = await connect(server, "recovering")
    again: list[tuple[int, int]] = []
    stop = asyncio.Event()
    run = asyncio.create_task(consumer(bus, republisher(bus, again)).run(stop))
    try:
        await wait_for(lambda: len(again) >= 8)
        await asyncio.sleep(1.5)  # past ack_wait: anything unacked would come back now
        assert sorted(again) == [(i, 2) for i in range(5, 13)]
        assert await unacked(bus) == 0
        assert await stored(bus, OUTPUT.name) == 12  # 5 and 6 deduped by their msg id
    finally:
        stop.set()
        await run
        await bus.close()


async def test_an_input_is_acked_only_once_its_result_is_stored(server: EmbeddedNats) -> None:
    """A result published where no stream listens is refused (no responders): its input is
    nak'd, not acked, and on the next delivery (the result now stored) acked."""
    bus = await connect(server, "refused")
    seen: list[tuple[int, int]] = []

    async def first_refused(env: Envelope[Withdrawal]) -> None:
        seen.append((int(env.message.opportunity_id), env.deliveries))
        subject = "nostream.x" if env.deliveries == 1 else "batchout.x"
        out = Withdrawal(opportunity_id="r", chain_id=CHAIN, reason="result")
        env.defer(await bus.publish_later(subject, out, msg_id="r", trace="t", seen_ns=1))

    stop = asyncio.Event()
    run = asyncio.create_task(consumer(bus, first_refused).run(stop))
    try:
        await send_inputs(bus, range(1, 2))
        await wait_for(lambda: len(seen) == 2)
        await asyncio.sleep(0.3)  # the second delivery's ack reaches the server
        assert seen == [(1, 1), (1, 2)]
        assert await unacked(bus) == 0
        assert await stored(bus, OUTPUT.name) == 1
    finally:
        stop.set()
        await run
        await bus.close()


async def test_a_malformed_message_in_a_batch_is_dead_lettered_and_the_rest_go_on(
    server: EmbeddedNats,
) -> None:
    bus = await connect(server, "malformed")
    seen: list[tuple[int, int]] = []
    await send_inputs(bus, range(1, 3))
    await bus.js.publish(SUBJECT, b"{not json", headers={"Nats-Msg-Id": "bad"})
    await send_inputs(bus, range(3, 5))
    stop = asyncio.Event()
    run = asyncio.create_task(consumer(bus, republisher(bus, seen)).run(stop))
    try:
        await wait_for(lambda: len(seen) == 4)
        await asyncio.sleep(0.3)
        assert sorted(seen) == [(i, 1) for i in range(1, 5)]
        assert await unacked(bus) == 0
        assert await stored(bus, OUTPUT.name) == 4
        letter = await bus.js.get_last_msg(DEAD.name, dead(CHAIN, "batchtest"))
        dead_letter = decode(DeadLetter, letter.data)
        assert dead_letter.payload_prefix == "{not json"
        assert "json" in dead_letter.reason.lower(), dead_letter.reason
    finally:
        stop.set()
        await run
        await bus.close()


async def test_replicas_sharing_the_consumer_handle_each_message_exactly_once(
    server: EmbeddedNats,
) -> None:
    """Two replicas (own connections) on the one durable: 600 inputs sent in bursts while both
    run; every input handled once in all (no duplicate, none missing), by both replicas."""
    buses = [await connect(server, f"replica-{k}") for k in (1, 2)]
    seen: list[list[tuple[int, int]]] = [[], []]
    stop = asyncio.Event()
    runs = [
        asyncio.create_task(consumer(bus, republisher(bus, got), concurrency=16).run(stop))
        for bus, got in zip(buses, seen, strict=True)
    ]
    try:
        for start in range(0, 600, 20):
            await send_inputs(buses[0], range(start, start + 20))
            await asyncio.sleep(0.01)
        await wait_for(lambda: len(seen[0]) + len(seen[1]) >= 600, 30.0)
        await asyncio.sleep(1.5)  # past ack_wait: an unacked input would come back now
        handled = Counter(i for got in seen for i, _ in got)
        assert sorted(handled) == list(range(600))
        assert set(handled.values()) == {1}
        assert seen[0] and seen[1], "both replicas take a share"
        assert await unacked(buses[0]) == 0
        assert await stored(buses[0], OUTPUT.name) == 600
    finally:
        stop.set()
        await asyncio.gather(*runs)
        for bus in buses:
            await bus.close()


async def test_a_hand_back_is_redelivered_without_counting_an_error(server: EmbeddedNats) -> None:
    """A handler that hands its input back (`Retryable(error=False)`: a stopping submit's
    ungated bundle) gets it again, and the stage's error counter stays where it was; a real
    failure (`Retryable`) counts one."""
    errors = metrics.ERRORS.labels(kind="batchtest_handler")
    before = errors._value.get()
    bus = await connect(server, "handback")
    seen: list[tuple[int, int]] = []

    async def hands_back_once(env: Envelope[Withdrawal]) -> None:
        i = int(env.message.opportunity_id)
        seen.append((i, env.deliveries))
        if env.deliveries == 1:
            raise Retryable("stopping", delay_s=0.05, error=i != 1)

    stop = asyncio.Event()
    run = asyncio.create_task(consumer(bus, hands_back_once).run(stop))
    try:
        await send_inputs(bus, range(1, 3))
        await wait_for(lambda: len(seen) == 4)
        await wait_for_acked(bus)
    finally:
        stop.set()
        await run
        await bus.close()
    assert sorted(seen) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert errors._value.get() - before == 1  # input 2's failure only


async def test_a_hand_back_on_the_last_delivery_reaches_the_next_consumer_once(
    server: EmbeddedNats,
) -> None:
    """max_deliver 1: every delivery is the last, after which the server delivers a message no
    more. A consumer hands both inputs back (a stopping submit): each is copied into the stream
    once its pulls have ended (not before: it would go to them), and the next consumer gets
    each copy once, on its first delivery, with the original's trace; no dead letter. Before,
    both were dead-lettered as they were handed back."""
    bus = await connect(server, "last-delivery")
    handed: list[int] = []

    async def hands_back(env: Envelope[Withdrawal]) -> None:
        handed.append(int(env.message.opportunity_id))
        raise Retryable("stopping", delay_s=0.05, error=False)

    stop = asyncio.Event()
    first = dataclasses.replace(consumer(bus, hands_back), max_deliver=1)
    run = asyncio.create_task(first.run(stop))
    try:
        await bus.js.publish(
            SUBJECT, payload(1), headers={"Nats-Msg-Id": "in-1", HEADER_TRACE: "t1"}
        )
        await send_inputs(bus, range(2, 3))
        await wait_for(lambda: sorted(handed) == [1, 2])
        await asyncio.sleep(0.3)
        assert await stored(bus, INPUT.name) == 2  # its pulls go on: no copy yet
    finally:
        stop.set()
        await run
    assert await stored(bus, INPUT.name) == 4
    assert await stored(bus, DEAD.name) == 0
    seen: list[tuple[int, int, str, str]] = []

    async def takes(env: Envelope[Withdrawal]) -> None:
        seen.append((int(env.message.opportunity_id), env.deliveries, env.trace, env.msg_id))

    stop = asyncio.Event()
    run = asyncio.create_task(dataclasses.replace(first, handler=takes).run(stop))
    try:
        await wait_for(lambda: len(seen) == 2)
        await wait_for_acked(bus)
    finally:
        stop.set()
        await run
        await bus.close()
    assert sorted(seen) == [
        (1, 1, "t1", "in-1:handed-back:1"),
        (2, 1, "in-2", "in-2:handed-back:2"),
    ]


async def wait_for_acked(bus: Bus) -> None:
    for _ in range(100):
        if await unacked(bus) == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("inputs not acked")
