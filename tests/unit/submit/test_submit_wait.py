"""`submit_wait`, submit's own part of `submit_arrive` (seen -> submit's handler, which holds
ingest, detect, simulate and the bundle's publish): from the bundle stored in its stream
(JetStream's timestamp in the delivery's reply subject) to submit's handler."""

from __future__ import annotations

import time

from mev_common import metrics
from mev_common.envelope import envelope_of
from nats.aio.msg import Msg

from tests.unit.submit.gate_world import bundle
from tests.unit.submit.submit_world import World, world

__all__ = ["world"]  # the fixture, imported for pytest


def delivered(reply: str) -> Msg:
    return Msg(_client=None, subject="mev.31337.bundles", reply=reply, data=b"{}")  # type: ignore[arg-type]


def test_the_envelope_carries_when_the_stream_stored_it() -> None:
    stored = delivered("$JS.ACK.BUNDLES.submit.1.7.9.1700000000123456789.0")
    env = envelope_of(stored, bundle(), 1)
    assert (env.seq, env.stored_ns) == (7, 1_700_000_000_123_457_000)  # to the microsecond
    assert envelope_of(delivered(""), bundle(), 1).stored_ns == 0  # core NATS: no stream


def wait_hops() -> tuple[float, float]:
    """(observations, their sum in s) of `submit_wait` so far (0, 0 before the first)."""
    found = {
        s.name.rsplit("_", 1)[1]: s.value
        for family in metrics.HOP_LATENCY.collect()
        for s in family.samples
        if s.name.endswith(("_count", "_sum")) and s.labels.get("hop") == "submit_wait"
    }
    return found.get("count", 0.0), found.get("sum", 0.0)


async def test_a_sent_trade_observes_its_wait_from_the_stream(world: World) -> None:
    sub = await world.start()
    count, total = wait_hops()
    stored = time.time_ns() - 5 * 10**9
    await sub.handle(bundle(), "t", 1, stored_ns=stored)
    assert len(world.chain.sent) == 1
    now_count, now_total = wait_hops()
    assert now_count == count + 1 and now_total - total >= 5.0  # stored 5 s before its handler


async def test_without_a_stream_time_nothing_is_observed(world: World) -> None:
    sub = await world.start()
    before = wait_hops()
    await sub.handle(bundle(), "t", 1)  # a direct call, as a test's: no stream
    assert len(world.chain.sent) == 1
    assert wait_hops() == before
