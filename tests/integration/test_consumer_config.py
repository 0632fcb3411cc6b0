"""A stage's durable consumer follows the config across restarts (mev_common.consumer_decl), on
a real nats-server.

Before, a durable kept the config it was created with: a service restarted with another
`nats.max_deliver` or `nats.ack_wait_s` subscribed to it as it was, silently, and counted
deliveries to its own limit while the server counted to the durable's, so a bundle handed back
on the server's last delivery was nak'd and never delivered again.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from mev_common.bus import Bus, Envelope
from mev_common.consumer import PullConsumer
from mev_common.consumer_decl import ConsumerMismatch
from mev_common.envelope import Retryable
from mev_common.messages import Withdrawal, encode
from mev_common.subjects import HEADER_HANDED_BACK, ConsumerSpec, StreamSpec
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tests.integration.test_batched_consumer import server as batched_server
from tests.support.submit_world import wait_for

pytestmark = pytest.mark.timeout(60)

CHAIN = 999
INPUT = StreamSpec("DECLIN", ("declin.>",), max_age_s=600)
DEAD = StreamSpec("DECLDEAD", (f"mev.{CHAIN}.dead.>",), max_age_s=600)
SPEC = ConsumerSpec(INPUT.name, "stage-999", "declin.x", 8)
UPDATED = "consumer updated to the config"
NOT_UPDATED = (
    "consumer differs from the config and could not be updated: running on its values; run "
    "`mev-bot nats-auth declare` (as operator) and restart the service"
)
# a user who may consume but not create or update consumers (an older, narrower auth.conf)
NARROW_AUTH = """
authorization {
  users = [
    { user: "op", password: "op" },
    { user: "narrow", password: "narrow", permissions: {
        publish: { allow: [">"], deny: ["$JS.API.CONSUMER.CREATE.>",
                                        "$JS.API.CONSUMER.DURABLE.CREATE.>"] },
        subscribe: { allow: [">"] } } }
  ]
}
"""


server = batched_server  # a fresh nats-server per test


async def connect(url: str, name: str) -> Bus:
    bus = await Bus.connect(url, name, timeout_s=1.0, attempts=3)
    await bus.ensure_streams([INPUT, DEAD])
    return bus


async def hand_back(env: Envelope[Withdrawal]) -> None:
    raise Retryable("stopping", error=False)


def stage(bus: Bus, max_deliver: int, ack_wait_s: float, handler=hand_back) -> PullConsumer:  # type: ignore[no-untyped-def]
    return PullConsumer(
        bus=bus,
        spec=SPEC,
        model=Withdrawal,
        handler=handler,
        stage="decltest",
        chain_id=CHAIN,
        max_deliver=max_deliver,
        ack_wait_s=ack_wait_s,
        nak_delay_s=0.05,
        fetch_timeout_s=0.2,
    )


async def start_and_stop(consumer: PullConsumer) -> None:  # type: ignore[type-arg]
    """A service's start (its consumer subscribed and pulling) and stop."""
    stop = asyncio.Event()
    run = asyncio.create_task(consumer.run(stop))
    await pulling(consumer.bus)
    stop.set()
    await run


async def pulling(bus: Bus) -> None:
    """Until the durable has a pull request waiting: a consumer subscribed and fetching."""
    for _ in range(200):
        try:
            if (await bus.js.consumer_info(SPEC.stream, SPEC.durable)).num_waiting:
                return
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("no consumer pulls")


def lines(caplog: pytest.LogCaptureFixture, msg: str) -> list[dict[str, str]]:
    return [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == msg]


async def test_a_restart_with_other_limits_updates_the_durable_and_says_what_changed(
    server: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mev.bus")
    bus = await connect(server.url, "decl")
    await start_and_stop(stage(bus, max_deliver=5, ack_wait_s=30.0))
    assert lines(caplog, UPDATED) == []  # created, not updated
    restarted = stage(bus, max_deliver=2, ack_wait_s=7.5)
    await start_and_stop(restarted)
    info = await bus.js.consumer_info(SPEC.stream, SPEC.durable)
    assert (info.config.max_deliver, info.config.ack_wait) == (2, 7.5)
    assert (info.config.max_ack_pending, info.config.filter_subject) == (8, "declin.x")
    assert restarted._limit == 2
    changed = "max_deliver 5 -> 2, ack_wait 30s -> 7.5s"
    assert lines(caplog, UPDATED) == [{"consumer": "DECLIN stage-999", "changed": changed}]
    await start_and_stop(stage(bus, max_deliver=2, ack_wait_s=7.5))  # same config: no line
    assert len(lines(caplog, UPDATED)) == 1
    await bus.close()


async def test_a_hand_back_on_the_last_delivery_of_a_durable_lowered_by_a_replica_is_copied(
    server: EmbeddedNats,
) -> None:
    """A rolling restart: replica A subscribed with max_deliver 5, replica B restarted with 2
    lowers the durable. A's hand-back on delivery 2 is the server's last: A asks the durable,
    stores a copy and acks the original (a nak there was the message's end)."""
    bus = await connect(server.url, "decl")
    seen: list[int] = []

    async def record_and_hand_back(env: Envelope[Withdrawal]) -> None:
        seen.append(env.deliveries)
        raise Retryable("stopping", error=False)

    old = stage(bus, max_deliver=5, ack_wait_s=30.0, handler=record_and_hand_back)
    stop = asyncio.Event()
    run = asyncio.create_task(old.run(stop))
    await pulling(bus)  # replica A subscribed
    new = stage(bus, max_deliver=2, ack_wait_s=30.0)
    await (await new.subscribe()).unsubscribe()  # replica B's start
    msg = encode(Withdrawal(opportunity_id="1", chain_id=CHAIN, reason="test"))
    await bus.js.publish("declin.x", msg, headers={"Nats-Msg-Id": "in-1"})
    await wait_for(lambda: len(seen) == 2, 10, "two deliveries")
    await asyncio.sleep(0.3)  # a third delivery, had the server allowed one
    stop.set()
    await run
    assert seen == [1, 2]
    assert (await bus.js.stream_info(INPUT.name)).state.messages == 2  # the original + copy
    copy = await bus.js.get_msg(INPUT.name, 2)
    assert (copy.data, (copy.headers or {}).get(HEADER_HANDED_BACK)) == (msg, "in-1")
    info = await bus.js.consumer_info(SPEC.stream, SPEC.durable)
    assert (info.num_ack_pending, info.num_pending) == (0, 1)  # the copy, for the next one
    assert (await bus.js.stream_info(DEAD.name)).state.messages == 0
    await bus.close()


async def test_a_durable_with_another_ack_policy_is_a_refusal_naming_the_fix(
    server: EmbeddedNats,
) -> None:
    bus = await connect(server.url, "decl")
    await bus.js.add_consumer(
        SPEC.stream,
        ConsumerConfig(
            durable_name=SPEC.durable,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=SPEC.filter_subject,
        ),
    )
    with pytest.raises(ConsumerMismatch) as refused:
        await asyncio.wait_for(stage(bus, 2, 7.5).run(asyncio.Event()), 10)
    assert str(refused.value) == (
        "durable consumer stage-999 on DECLIN has ack_policy all (config: explicit), which "
        "JetStream cannot change on a durable: stop every replica of this stage, run "
        "`nats consumer rm DECLIN stage-999`, then start them (the durable is created from "
        "the config; it delivers what DECLIN still holds again)"
    )
    assert refused.value.exit_code == 2  # a RefuseToStart: the service exits 2
    info = await bus.js.consumer_info(SPEC.stream, SPEC.durable)
    assert (info.config.ack_policy, info.config.max_deliver) == (AckPolicy.ALL, -1)
    await bus.close()


async def test_a_service_that_may_not_update_says_so_and_runs_on_the_durable_limits(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="mev.bus")
    server = start_embedded_nats(store_dir=tmp_path / "nats", extra_conf=NARROW_AUTH)
    try:
        url = f"nats://op:op@127.0.0.1:{server.port}"
        operator = await connect(url, "operator")
        await start_and_stop(stage(operator, max_deliver=5, ack_wait_s=30.0))
        narrow = await Bus.connect(f"nats://narrow:narrow@127.0.0.1:{server.port}", "n", 1.0)
        restarted = stage(narrow, max_deliver=2, ack_wait_s=7.5)
        await start_and_stop(restarted)
        info = await operator.js.consumer_info(SPEC.stream, SPEC.durable)
        assert (info.config.max_deliver, info.config.ack_wait) == (5, 30.0)
        assert restarted._limit == 5  # its last-delivery decision follows the server
        [line] = lines(caplog, NOT_UPDATED)
        assert (line["consumer"], line["differs"]) == (
            "DECLIN stage-999",
            "max_deliver 5 -> 2, ack_wait 30s -> 7.5s",
        )
        assert [r.levelname for r in caplog.records if r.getMessage() == NOT_UPDATED] == ["ERROR"]
        await narrow.close()
        await operator.close()
    finally:
        server.cleanup()
