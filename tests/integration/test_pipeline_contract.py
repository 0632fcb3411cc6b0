"""The bus contract, end to end through real stage processes and a real nats-server.

The stages are pass-through relays on the real runtime and bus (tests/support/relay.py), so the
contract is tested apart from any chain logic.

Each test uses its own chain id, so tests share one broker (module fixture) without seeing each
other's subjects.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import orjson
import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Bundle, DeadLetter, Opportunity, PendingTx, decode, encode
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats
from nats.js.api import DeliverPolicy

from tests.conftest import NatsEndpoint
from tests.support.stack import ServiceProcess, stop_all, write_config

SENDER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def tx_hash(chain_id: int, i: int) -> str:
    """Distinct per chain: the tests share a stream, whose dedup window spans chains."""
    return f"0x{chain_id:08x}{i:056x}"


def pending_tx(chain_id: int, i: int) -> PendingTx:
    return PendingTx.model_validate(
        {
            "chain_id": chain_id,
            "hash": tx_hash(chain_id, i),
            "from": SENDER,
            "nonce": i,
            "gas": 100_000,
        }
    )


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    stop_all(started)


def spawn(started: list[ServiceProcess], name: str, config: Path, tmp: Path) -> ServiceProcess:
    proc = ServiceProcess(name, config, tmp / f"{name}.log", relay=True).start()
    started.append(proc)
    return proc


async def subject_count(bus: Bus, stream: str, subject: str) -> int:
    info = await bus.js.stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def wait_count(
    bus: Bus, stream: str, subject: str, expected: int, timeout_s: float = 30.0
) -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = await subject_count(bus, stream, subject)
        if count >= expected:
            break
        await asyncio.sleep(0.1)
    return count


async def read_all(
    bus: Bus, subject: str, n: int, timeout_s: float = 5.0
) -> list[nats.aio.msg.Msg]:
    sub = await bus.js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    got = []
    try:
        while len(got) < n:
            got.append(await sub.next_msg(timeout=timeout_s))
    finally:
        await sub.unsubscribe()
    return got


async def publish_pending(bus: Bus, chain_id: int, ids: range) -> None:
    for i in ids:
        tx = pending_tx(chain_id, i)
        await bus.publish(
            subjects.mempool(chain_id), tx, msg_id=tx.hash, trace=tx.hash, seen_ns=time.time_ns()
        )


async def test_same_msg_id_is_stored_once(bus: Bus) -> None:
    chain = 101
    tx = pending_tx(chain, 1)
    first = await bus.publish(subjects.mempool(chain), tx, msg_id="dup-1", trace="t", seen_ns=1)
    second = await bus.publish(subjects.mempool(chain), tx, msg_id="dup-1", trace="t", seen_ns=1)
    assert not first.duplicate
    assert second.duplicate is True
    assert second.seq == first.seq
    assert await subject_count(bus, "MEMPOOL", subjects.mempool(chain)) == 1


async def test_1000_messages_exactly_once_through_detect_and_simulate_with_sigkill(
    bus: Bus, nats_server: NatsEndpoint, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    chain = 102
    config = write_config(tmp_path, nats_server.url, chain)
    await publish_pending(bus, chain, range(1000))
    detect = spawn(services, "detect", config, tmp_path)
    spawn(services, "simulate", config, tmp_path)
    bundles_subject = subjects.bundles(chain)
    # kill detect mid-run: whatever it had in flight is redelivered after ack_wait (2 s)
    reached = await wait_count(bus, "BUNDLES", bundles_subject, 200, timeout_s=30)
    assert reached < 1000, "detect finished before it could be killed; raise the count"
    detect.signal(signal.SIGKILL)
    assert detect.wait() == -signal.SIGKILL
    spawn(services, "detect", config, tmp_path)

    assert await wait_count(bus, "BUNDLES", bundles_subject, 1000) == 1000
    await asyncio.sleep(3.0)  # longer than ack_wait: any redelivery would have landed by now
    assert await subject_count(bus, "BUNDLES", bundles_subject) == 1000
    opportunities = subjects.opportunities(chain, "backrun")
    assert await subject_count(bus, "OPPORTUNITIES", opportunities) == 1000
    msgs = await read_all(bus, bundles_subject, 1000)
    ids = {decode(Bundle, m.data).id for m in msgs}
    assert ids == {f"bundle:backrun:{tx_hash(chain, i)}" for i in range(1000)}
    assert all(m.headers and m.headers["Mev-Trace"].startswith("0x") for m in msgs)


async def test_malformed_input_is_dead_lettered_and_service_stays_healthy(
    bus: Bus, nats_server: NatsEndpoint, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    chain = 103
    config = write_config(tmp_path, nats_server.url, chain)
    detect = spawn(services, "detect", config, tmp_path)
    detect.wait_health(200)
    good = orjson.loads(encode(pending_tx(chain, 1)))
    bad_payloads = {
        "not-json": b"\x00not json",
        "unknown-v": orjson.dumps({**good, "v": 9}),
        "float-wei": orjson.dumps({**good, "value": 1e18}),
        "missing-field": orjson.dumps({k: v for k, v in good.items() if k != "nonce"}),
        "too-big": orjson.dumps({**good, "input": "0x" + "00" * 500_000}),
        "short-address": orjson.dumps({**good, "from": "0x1234"}),
    }
    for msg_id, payload in bad_payloads.items():
        await bus.js.publish(subjects.mempool(chain), payload, headers={"Nats-Msg-Id": msg_id})
    tx = pending_tx(chain, 2)
    await bus.publish(subjects.mempool(chain), tx, msg_id=tx.hash, trace=tx.hash, seen_ns=1)

    big_size = len(bad_payloads["too-big"])
    assert big_size > 2**20 - 50_000  # near NATS's 1 MB max_payload
    dead_subject = subjects.dead(chain, "detect")
    assert await wait_count(bus, "DEAD", dead_subject, 6) == 6
    letters = {
        m.headers["Mev-Error"]: decode(DeadLetter, m.data)
        for m in await read_all(bus, dead_subject, 6)
        if m.headers
    }
    reasons = {letter.headers["Nats-Msg-Id"]: letter.reason for letter in letters.values()}
    assert reasons == {
        "not-json": "not JSON: unexpected character, expected a JSON value: line 1 column 1 "
        "(char 0)",
        "unknown-v": "unsupported schema version v=9: this build reads v=1",
        "float-wei": "invalid PendingTx: value: big integers must be decimal or 0x-hex "
        "strings, not JSON numbers",
        "missing-field": "invalid PendingTx: nonce: Field required",
        "too-big": f"payload of {big_size} bytes exceeds the limit of 262144",
        "short-address": "invalid PendingTx: from: expected a 20-byte address: "
        "0x followed by 40 hex digits",
    }
    big = next(v for v in letters.values() if v.headers["Nats-Msg-Id"] == "too-big")
    assert big.payload_size == big_size
    assert len(big.payload_prefix) == 4096
    assert detect.health_status() == 200
    opportunities = subjects.opportunities(chain, "backrun")
    assert await wait_count(bus, "OPPORTUNITIES", opportunities, 1) == 1
    [msg] = await read_all(bus, opportunities, 1)
    assert decode(Opportunity, msg.data).trigger == tx.hash


async def test_sigterm_under_load_finishes_in_flight_and_loses_nothing(
    bus: Bus, nats_server: NatsEndpoint, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    chain = 104
    config = write_config(tmp_path, nats_server.url, chain)
    await publish_pending(bus, chain, range(2000))
    detect = spawn(services, "detect", config, tmp_path)
    opportunities = subjects.opportunities(chain, "backrun")
    reached = await wait_count(bus, "OPPORTUNITIES", opportunities, 300)
    assert reached < 2000
    detect.signal(signal.SIGTERM)
    assert detect.wait() == 0
    # every acked input was published downstream: nothing pending without its output
    consumer = await bus.js.consumer_info("MEMPOOL", f"detect-{chain}")
    assert consumer.num_ack_pending == 0
    done = await subject_count(bus, "OPPORTUNITIES", opportunities)
    assert done == 2000 - consumer.num_pending
    spawn(services, "detect", config, tmp_path)
    assert await wait_count(bus, "OPPORTUNITIES", opportunities, 2000) == 2000
    await asyncio.sleep(0.5)
    assert await subject_count(bus, "OPPORTUNITIES", opportunities) == 2000


async def test_health_turns_503_without_nats_and_200_when_back(tmp_path: Path) -> None:
    own: EmbeddedNats = start_embedded_nats(store_dir=tmp_path / "nats")
    config = write_config(tmp_path, own.url, 105)
    proc = ServiceProcess("simulate", config, tmp_path / "s.log", relay=True)
    try:
        proc.start().wait_health(200)
        own.kill()
        proc.wait_health(503, timeout_s=10)
        own.start()
        proc.wait_health(200, timeout_s=15)
    finally:
        proc.stop()
        own.cleanup()
    assert proc.proc is not None and proc.proc.returncode == 0
