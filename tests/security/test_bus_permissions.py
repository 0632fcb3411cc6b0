"""The bus refuses who may not speak (issue 11): a real nats-server with the shipped permission
config (mev_common.nats_auth), each client connected with one user's credential.

Each test is an attack that succeeded before bus permissions existed: a forged bundle from a
non-simulate credential, a service clearing the emergency stop or faking another's heartbeat,
a connection without credentials. Counts and values are exact."""

from __future__ import annotations

import asyncio
import io
import logging
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import pytest
from mev_common import nats_auth, subjects
from mev_common.bus import Bus
from mev_common.control import ack_key, control_key, ensure_control_bucket
from mev_common.lifecycle_keys import instance_key
from mev_common.messages import Opportunity, encode
from mev_common.runtime import JsonFormatter
from mev_common.settings import Settings, load_settings
from mev_ops.nats_auth_cmds import declare
from mev_ops.nats_server import EmbeddedNats
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy, RePublish, StreamConfig

from tests.support.relay import ZERO_HASH, bundle_for
from tests.support.stack import write_config

CHAIN = 7791
REFUSE_S = 1.0  # a refused JetStream publish gets no ack: the client gives up after this


@dataclass
class Secured:
    server: EmbeddedNats
    settings: Settings
    auth: Path
    clients: list[Client] = field(default_factory=list)

    async def connect(self, user: str) -> tuple[Client, list[str]]:
        """A connection with `user`'s credential; asynchronous server errors are collected."""
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(
            self.server.url,
            allow_reconnect=False,
            error_cb=on_error,
            **nats_auth.connect_options(self.settings.nats, user),
        )
        self.clients.append(nc)
        return nc, errors

    async def stream_count(self, stream: str) -> int:
        op, _ = await self.connect("operator")
        return int((await op.jetstream().stream_info(stream)).state.messages)


@pytest.fixture
async def bus(secured_server: tuple[EmbeddedNats, Path], tmp_path: Path) -> AsyncIterator[Secured]:
    server, auth = secured_server
    config = write_config(tmp_path / "cfg", server.url, CHAIN, nats={"credentials_dir": str(auth)})
    settings = load_settings(config)
    assert await declare(settings) == 0
    secured = Secured(server, settings, auth)
    yield secured
    for nc in secured.clients:
        if not nc.is_closed:
            await nc.close()


def forged_bundle() -> bytes:
    opp = Opportunity(
        id="backrun:0xforged",
        chain_id=CHAIN,
        strategy="backrun",
        trigger="0x" + "ab" * 32,
        block_number=0,
        block_hash=ZERO_HASH,
    )
    return encode(bundle_for(opp))


def refused(errors: list[str], subject: str) -> bool:
    return any(
        "permissions violation for publish" in e.lower() and subject.lower() in e.lower()
        for e in errors
    )


@pytest.mark.parametrize("user", ["detect", "ingest"])
async def test_a_forged_bundle_from_a_non_simulate_credential_is_refused(
    bus: Secured, user: str
) -> None:
    nc, errors = await bus.connect(user)
    with pytest.raises(nats.errors.TimeoutError):
        await nc.jetstream().publish(subjects.bundles(CHAIN), forged_bundle(), timeout=REFUSE_S)
    assert refused(errors, subjects.bundles(CHAIN)), errors
    assert await bus.stream_count("BUNDLES") == 0


@pytest.mark.parametrize("user", ["simulate", "submit"])  # submit: a hand-back's copy
async def test_simulate_and_submit_credentials_publish_a_bundle(bus: Secured, user: str) -> None:
    nc, errors = await bus.connect(user)
    ack = await nc.jetstream().publish(subjects.bundles(CHAIN), forged_bundle())
    assert ack.stream == "BUNDLES" and errors == []
    assert await bus.stream_count("BUNDLES") == 1


async def test_a_service_cannot_clear_the_emergency_stop_but_the_operator_can(
    bus: Secured,
) -> None:
    op, _ = await bus.connect("operator")
    op_kv = await ensure_control_bucket(op.jetstream())
    key = control_key(CHAIN, "emergency_stop")
    set_rev = await op_kv.put(key, b"1")
    for user in nats_auth.SERVICES:
        nc, errors = await bus.connect(user)
        kv = await ensure_control_bucket(nc.jetstream(timeout=REFUSE_S))
        with pytest.raises(nats.errors.TimeoutError):
            await kv.put(key, b"0")
        assert refused(errors, f"$KV.mev-control.{key}"), (user, errors)
    entry = await op_kv.get(key)
    assert (entry.value, entry.revision) == (b"1", set_rev)
    cleared = await op_kv.put(key, b"0")
    assert (await op_kv.get(key)).value == b"0" and cleared == set_rev + 1


async def test_a_service_writes_its_own_heartbeat_and_acks_not_anothers(bus: Secured) -> None:
    op, _ = await bus.connect("operator")
    op_kv = await ensure_control_bucket(op.jetstream())
    submit, submit_errors = await bus.connect("submit")
    kv = await ensure_control_bucket(submit.jetstream(timeout=REFUSE_S))
    own_beat = instance_key(CHAIN, "submit", "submit-0")
    own_ack = ack_key(CHAIN, "emergency_stop", "submit-0")
    await kv.put(own_beat, b"{}")
    await kv.put(own_ack, b"7")
    await kv.delete(own_beat)  # a clean exit removes its heartbeat
    assert submit_errors == []
    forged = [
        instance_key(CHAIN, "ingest", "ingest-0"),  # another service's heartbeat
        f"{CHAIN}.rpc_rate_factor",  # a control value: the operator's alone
        f"{CHAIN}.shutdown",  # the operator's shutdown request
    ]
    for key in forged:
        with pytest.raises(nats.errors.TimeoutError):
            await kv.put(key, b"forged")
        assert refused(submit_errors, f"$KV.mev-control.{key}"), (key, submit_errors)
    keys = sorted(await op_kv.keys())
    assert keys == [own_ack]
    assert (await op_kv.get(own_ack)).value == b"7"


async def test_detect_cannot_delete_or_purge_a_stream(bus: Secured) -> None:
    nc, errors = await bus.connect("detect")
    js = nc.jetstream(timeout=REFUSE_S)
    with pytest.raises(nats.errors.TimeoutError):
        await js.delete_stream("BUNDLES")
    with pytest.raises(nats.errors.TimeoutError):
        await js.purge_stream("MEMPOOL")
    assert refused(errors, "$JS.API.STREAM.DELETE.BUNDLES")
    assert refused(errors, "$JS.API.STREAM.PURGE.MEMPOOL")
    op, _ = await bus.connect("operator")
    for stream in ("BUNDLES", "MEMPOOL"):
        assert (await op.jetstream().stream_info(stream)).config.name == stream


async def test_a_service_cannot_route_messages_into_the_control_bucket(bus: Secured) -> None:
    """A stream's `republish` is done by the server, past subject permissions: a stream over
    detect's withdrawals republishing to `<chain>.emergency_stop` lets detect clear the stop.
    So services may neither create nor update streams; and a push consumer delivering into
    the control subject does not reach the bucket."""
    op, _ = await bus.connect("operator")
    op_kv = await ensure_control_bucket(op.jetstream())
    key = control_key(CHAIN, "emergency_stop")
    stop_rev = await op_kv.put(key, b"1")
    target = f"$KV.mev-control.{key}"
    withdrawals = subjects.withdrawals(CHAIN)
    evil = StreamConfig(
        name="EVIL", subjects=[withdrawals], republish=RePublish(src=withdrawals, dest=target)
    )
    detect, errors = await bus.connect("detect")
    djs = detect.jetstream(timeout=REFUSE_S)
    with pytest.raises(nats.errors.TimeoutError):
        await djs.add_stream(evil)
    blocks = StreamConfig(name="BLOCKS", subjects=["mev.*.blocks"])
    with pytest.raises(nats.errors.TimeoutError):
        await djs.update_stream(blocks)
    assert refused(errors, "$JS.API.STREAM.CREATE.EVIL")
    assert refused(errors, "$JS.API.STREAM.UPDATE.BLOCKS")
    await detect.jetstream().add_consumer(
        "MEMPOOL", ConsumerConfig(deliver_subject=target, deliver_policy=DeliverPolicy.ALL)
    )
    ingest, _ = await bus.connect("ingest")
    await ingest.jetstream().publish(subjects.mempool(CHAIN), b"0")
    await detect.publish(withdrawals, b"0")
    await asyncio.sleep(0.5)
    entry = await op_kv.get(key)
    assert (entry.value, entry.revision) == (b"1", stop_rev)
    # had detect been able to create that stream, its next withdrawal clears the stop:
    await op.jetstream().add_stream(evil)
    await detect.publish(withdrawals, b"0")
    await asyncio.sleep(0.5)
    assert (await op_kv.get(key)).value == b"0"


async def test_simulate_follows_the_mempool_subject_but_cannot_publish_on_it(
    bus: Secured,
) -> None:
    """Simulate traces a backrun's victim when its pending swap is published (victims.py).
    Refused that subscription, it failed silently under `make run` (nats auth on): no early
    trace ever started and every backrun waited for its victim's trace."""
    simulate, errors = await bus.connect("simulate")
    seen: list[bytes] = []
    got = asyncio.Event()

    async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(msg.data)
        got.set()

    await simulate.subscribe(subjects.mempool(CHAIN), cb=on_msg)
    await simulate.flush()
    ingest, _ = await bus.connect("ingest")
    await ingest.jetstream().publish(subjects.mempool(CHAIN), b"pending-1")
    await asyncio.wait_for(got.wait(), 5)
    await simulate.publish(subjects.mempool(CHAIN), b"forged")
    await simulate.flush()
    await asyncio.sleep(0.2)  # the server's refusal arrives asynchronously
    assert seen == [b"pending-1"]
    assert await bus.stream_count("MEMPOOL") == 1
    assert refused(errors, subjects.mempool(CHAIN))
    assert not any("subscription" in e.lower() for e in errors)


async def test_a_connection_without_credentials_is_refused(bus: Secured) -> None:
    with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
        await nats.connect(bus.server.url, allow_reconnect=False, connect_timeout=2)


def test_credential_files_are_0600_in_a_0700_dir_and_reused(bus: Secured) -> None:
    assert stat.S_IMODE(bus.auth.stat().st_mode) == 0o700
    seeds: dict[str, bytes] = {}
    for user in nats_auth.USERS:
        path = nats_auth.seed_path(bus.auth, user)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, user
        seeds[user] = path.read_bytes()
    nats_auth.ensure_credentials(bus.auth)  # a second start reuses them
    assert {u: nats_auth.seed_path(bus.auth, u).read_bytes() for u in nats_auth.USERS} == seeds
    conf = (bus.auth / nats_auth.AUTH_CONF).read_text()
    assert all(seed.strip().decode() not in conf for seed in seeds.values())


def test_a_credential_in_a_log_line_or_error_is_masked(bus: Secured) -> None:
    seed = nats_auth.read_seed(nats_auth.seed_path(bus.auth, "submit")).decode()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("submit"))
    logger = logging.getLogger("test.mask")
    logger.addHandler(handler)
    try:
        logger.error("connect failed with %s", seed, extra={"fields": {"seed": seed}})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert seed not in line and line.count("S***") == 2
    # a seed pasted into the config is refused without being echoed
    from mev_common.settings import ConfigError

    config = write_config(
        bus.auth.parent / "bad", bus.server.url, CHAIN, nats={"credentials_file": seed}
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert seed not in str(info.value) and "nats.credentials_file: got '***'" in str(info.value)


async def test_services_run_the_pipeline_path_with_their_own_credentials(bus: Secured) -> None:
    """The runtime's path works under permissions: Bus.connect with connect_options, a
    read-only ensure_streams, a durable pull consumer with acks, the ack-backed publish
    downstream, a dead letter of its own stage and the control watch."""
    from mev_common.consumer import PullConsumer
    from mev_common.subjects import consumer_specs, stream_specs

    async def service_bus(user: str) -> Bus:
        return await Bus.connect(
            bus.server.url,
            user,
            attempts=1,
            options=nats_auth.connect_options(bus.settings.nats, user),
        )

    ingest = await service_bus("ingest")
    await ingest.js.publish(subjects.blocks(CHAIN), b"{}")
    last = await ingest.js.get_last_msg("BLOCKS", subjects.blocks(CHAIN))  # resume at start
    assert (last.seq, last.data) == (1, b"{}")
    await ingest.close()
    detect, simulate = await service_bus("detect"), await service_bus("simulate")
    try:
        for service in (detect, simulate):
            await service.ensure_streams(stream_specs(bus.settings))
            await asyncio.wait_for(ensure_control_bucket(service.js), 5)
        opp = Opportunity(
            id="backrun:0x01",
            chain_id=CHAIN,
            strategy="backrun",
            trigger="0x" + "01" * 32,
            block_number=0,
            block_hash=ZERO_HASH,
        )
        await detect.publish(
            subjects.opportunities(CHAIN, "backrun"), opp, msg_id=opp.id, trace="t", seen_ns=1
        )
        await detect.nc.publish(subjects.opportunities(CHAIN, "backrun"), b"not json")
        done = asyncio.Event()

        async def to_bundle(env) -> None:  # type: ignore[no-untyped-def]
            bundle = bundle_for(env.message)
            await simulate.publish(
                subjects.bundles(CHAIN), bundle, msg_id=bundle.id, trace=env.trace, seen_ns=1
            )
            done.set()

        consumer = PullConsumer(
            bus=simulate,
            spec=consumer_specs(bus.settings)["simulate"],
            model=Opportunity,
            handler=to_bundle,
            stage="simulate",
            chain_id=CHAIN,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await asyncio.wait_for(done.wait(), 10)
        deadline = asyncio.get_running_loop().time() + 10
        while await bus.stream_count("DEAD") < 1:
            assert asyncio.get_running_loop().time() < deadline, consumer.last_error
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert consumer.processed == 1
        assert await bus.stream_count("BUNDLES") == 1
        assert await bus.stream_count("DEAD") == 1
        info = await simulate.js.consumer_info("OPPORTUNITIES", f"simulate-{CHAIN}")
        assert info.num_ack_pending == 0 and info.num_pending == 0
    finally:
        await detect.close()
        await simulate.close()
