"""A bundle handed back at SIGTERM on its last allowed delivery reaches the next submit, on real
anvil, real NATS and real submit processes: sent once, booked once, the ledger matching the
chain to the wei.

`nats.max_deliver` 1 makes every delivery a bundle's last (the 5th of the default is the same
case): the server delivers such a message no more, whatever the stopping submit answers. A
hand-back is no failed attempt: the stopping submit stores a copy of the bundle in the stream
(a new message, its deliveries counted from zero) once its own pulls have ended, and acks the
original. Before, the consumer dead-lettered it: the next submit never saw a bundle no one had
tried.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Bundle, DeadLetter

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.held_gate import handed_back_then_landed, relay_config, relay_fixture
from tests.support.holding_relay import HoldingRelay
from tests.support.stream_read import read_all
from tests.support.submit_world import CHAIN, module_devnet

pytestmark = pytest.mark.timeout(120)
devnet = module_devnet("hand-back-devnet")

relay = relay_fixture  # the relay in front of `devnet`, holding the first broadcast


async def test_a_bundle_handed_back_on_its_last_delivery_is_sent_by_the_next_submit_once(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, relay: HoldingRelay, tmp_path: Path
) -> None:
    # ack_wait past the test's hold: no delivery ends by timeout, only by the hand-back
    nats = {"max_deliver": 1, "ack_wait_s": 30}
    config = relay_config(tmp_path, nats_server.url, devnet, relay, lanes=1, nats=nats)
    first, second, third = await handed_back_then_landed(devnet, bus, relay, config, "last")
    assert await read_all(bus, subjects.dead(CHAIN, "submit"), DeadLetter) == []
    stored = [b.id for b in await read_all(bus, subjects.bundles(CHAIN), Bundle)]
    assert stored[:3] == [first.id, second.id, third.id]
    assert sorted(stored[3:]) == sorted([second.id, third.id])  # the copies, once each
    info = await bus.js.consumer_info("BUNDLES", f"submit-{CHAIN}")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    log = (tmp_path / "submit.log").read_text()
    assert log.count('"msg":"handed back on its last delivery: copied"') == 2
