"""A published bundle is sent before the next simulation runs (services/simulate/priority.py,
`unsent_flushed`), on a real nats-server through the bus simulate publishes with.

Two handlers woken by one victim trace, as on `make run`: the first publishes its bundle and
awaits the stream's ack, the second runs a synchronous simulation. nats-py only queues a publish
and writes it from its flusher task, which the second handler is ahead of in the loop: without
the yield the bundle is stored only after the second simulation ended (and its seen -> ack grew
by that run). The order is read from the stream's own store time, not from a timer."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from pydantic import BaseModel

from services.simulate.priority import unsent_flushed

RUN_S = 0.15  # the second handler's synchronous "simulation"


def simulate_sync(seconds: float) -> None:
    """The EVM holds the loop (and the GIL) for the run."""
    time.sleep(seconds)


class Note(BaseModel):
    n: int


async def store_time_vs_run(bus: Bus, flush_first: bool, n: int) -> tuple[datetime, datetime]:
    """(when the stream stored the first handler's bundle, when the second handler's run ended)."""
    subject = subjects.bundles(31337)
    trace: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ended: list[datetime] = []

    async def publisher() -> None:
        await trace
        await bus.publish(subject, Note(n=n), msg_id=f"first-{n}", trace="t", seen_ns=1)

    async def simulation() -> None:
        await trace
        if flush_first:
            assert await unsent_flushed(bus.nc)
        simulate_sync(RUN_S)
        ended.append(datetime.now(UTC))

    tasks = [asyncio.ensure_future(publisher()), asyncio.ensure_future(simulation())]
    await asyncio.sleep(0)  # both wait on the trace
    trace.set_result(None)
    await asyncio.gather(*tasks)
    stored = await bus.js.get_last_msg("BUNDLES", subject)
    assert stored.data is not None and b'"n":' + str(n).encode() in stored.data
    assert stored.time is not None
    return stored.time.astimezone(UTC), ended[0]


@pytest.mark.parametrize("flush_first", [False, True])
async def test_a_bundle_is_sent_before_the_next_run(bus: Bus, flush_first: bool) -> None:
    # one publish first: the client's request inbox exists, as in a running service
    await bus.publish(subjects.bundles(31337), Note(n=0), msg_id="warm", trace="t", seen_ns=1)
    stored, run_ended = await store_time_vs_run(bus, flush_first, 1)
    if flush_first:
        assert stored < run_ended  # sent while the run held the loop
    else:
        assert stored >= run_ended  # the mechanism the rule is for: sent after the run


async def test_an_empty_buffer_costs_no_turn_and_a_stuck_one_is_not_waited_on() -> None:
    class Client:
        pending_data_size = 0

    turns = 0

    async def count() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.ensure_future(count())
    await asyncio.sleep(0)
    start = turns
    assert await unsent_flushed(Client())
    assert turns == start  # returned without yielding
    Client.pending_data_size = 7  # a disconnected client keeps its buffer
    assert not await unsent_flushed(Client(), turns=3)
    assert turns == start + 3
    counter.cancel()
