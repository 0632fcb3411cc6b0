"""Pure parts of consumer recovery: stall detection, where an ordered reader resumes, and the
NATS server list. (The real broker restarts are in tests/chaos.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mev_common.ordered import resume_config
from mev_common.settings import ConfigError, load_settings
from mev_common.stall import StallWatch
from mev_common.subjects import stream_specs
from nats.js.api import ConsumerConfig, DeliverPolicy

from tests.unit.test_settings import base


def test_stall_needs_waiting_work_and_no_ack_for_the_whole_window() -> None:
    watch = StallWatch(stall_s=30.0)
    watch.progress(now=0.0)
    watch.observe(0, now=100.0)  # idle a long time: not stalled
    assert not watch.stalled(now=100.0)
    watch.observe(5, now=100.0)  # work arrives: the clock starts now, not at the last ack
    assert not watch.stalled(now=129.9)
    assert watch.stalled(now=130.0)
    assert watch.stalled_for(now=131.0) == 31.0
    watch.progress(now=131.0)  # an ack: progress again
    assert not watch.stalled(now=160.9)
    assert watch.stalled(now=161.0)
    watch.observe(0, now=162.0)  # drained
    assert not watch.stalled(now=500.0)


START_TIME = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time="2026")


@pytest.mark.parametrize(
    ("last_seq", "first", "last", "policy", "start_seq"),
    [
        (41, 1, 50, DeliverPolicy.BY_START_SEQUENCE, 42),  # same store: right after ours
        (50, 1, 50, DeliverPolicy.BY_START_SEQUENCE, 51),  # nothing new yet: wait at 51
        (41, 1, 3, DeliverPolicy.BY_START_TIME, None),  # store lost: sequences restarted
        (None, 1, 50, DeliverPolicy.BY_START_TIME, None),  # nothing handled yet
        (41, 45, 50, DeliverPolicy.BY_START_TIME, None),  # ours aged out of the stream
    ],
    ids=["same store", "caught up", "empty store", "never read", "aged out"],
)
def test_ordered_reader_resumes_after_its_last_message_only_if_the_stream_has_it(
    last_seq: int | None, first: int, last: int, policy: DeliverPolicy, start_seq: int | None
) -> None:
    config = resume_config(START_TIME, last_seq, first, last)
    assert config.deliver_policy == policy
    assert config.opt_start_seq == start_seq
    # never both a start time and a start sequence (the server rejects that)
    assert config.opt_start_time is None or config.opt_start_seq is None
    assert config is not START_TIME  # nats-py mutates what it is given


def write(tmp: Path, nats: dict[str, object]) -> Path:
    config = base()
    config["nats"] = nats
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_nats_urls_list_and_replicas(tmp_path: Path) -> None:
    urls = ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"]
    settings = load_settings(write(tmp_path, {"urls": urls, "replicas": 3}))
    assert settings.nats.servers == urls
    assert {spec.config().num_replicas for spec in stream_specs(settings)} == {3}
    single = load_settings(write(tmp_path, {"url": "nats://x:1"}))
    assert single.nats.servers == ["nats://x:1"]
    assert single.nats.replicas == 1 and single.nats.consumer_stall_s == 30.0


def test_a_bad_url_in_the_list_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, {"urls": ["nats://n1:4222", "n2:4222"]}))
    assert any("nats.urls" in p and "'n2:4222'" in p for p in err.value.problems), err.value


async def test_best_url_follows_failover_for_single_url_clients() -> None:
    from mev_common.chain.rpc_pool import RpcPool
    from mev_common.settings import RpcEndpoint

    pool = RpcPool(
        [
            RpcEndpoint(name="primary", url="http://p:1"),
            RpcEndpoint(name="backup", url="http://b:1"),
        ],
        clock=lambda: 100.0,
    )
    try:
        pool.states["primary"].latency_s, pool.states["backup"].latency_s = 0.001, 0.002
        assert pool.best_url() == "http://p:1"
        pool.states["primary"].down_until = 101.0  # failed: backing off
        assert pool.best_url() == "http://b:1"
    finally:
        await pool.close()


async def test_best_url_sticks_to_a_usable_current_endpoint() -> None:
    """Simulate's EVM reforks cold when its URL changes: two healthy endpoints whose latency
    averages cross must not move it; a down or lagging current one must."""
    from mev_common.chain.rpc_pool import RpcPool
    from mev_common.settings import RpcEndpoint

    pool = RpcPool(
        [
            RpcEndpoint(name="primary", url="http://p:1"),
            RpcEndpoint(name="backup", url="http://b:1"),
        ],
        clock=lambda: 100.0,
    )
    try:
        p, b = pool.states["primary"], pool.states["backup"]
        p.head = b.head = 50
        p.latency_s, b.latency_s = 0.003, 0.001  # backup faster now: a wobble
        assert pool.best_url("http://p:1") == "http://p:1"
        assert pool.best_url() == "http://b:1"
        b.head = 54  # primary 4 blocks behind (max_lag_blocks 3): lagging, leave it
        assert pool.best_url("http://p:1") == "http://b:1"
        b.head, p.down_until = 50, 101.0  # primary backing off
        assert pool.best_url("http://p:1") == "http://b:1"
        assert pool.best_url("http://gone:1") == "http://b:1"  # not ours any more
    finally:
        await pool.close()


def test_a_stalled_consumer_fails_health_naming_it() -> None:
    from mev_common.consumer import PullConsumer
    from mev_common.messages import PendingTx
    from mev_common.runtime import Runtime, _stall_check
    from mev_common.subjects import ConsumerSpec

    async def handler(env: object) -> None: ...

    consumer: PullConsumer[PendingTx] = PullConsumer(
        bus=None,  # type: ignore[arg-type]  # health never touches the bus
        spec=ConsumerSpec("MEMPOOL", "detect-999", "mev.999.mempool", 64),
        model=PendingTx,
        handler=handler,
        stage="detect",
        chain_id=999,
        stall=StallWatch(stall_s=30.0),
    )
    rt = Runtime(service="detect", settings=None, bus=None, instance="t")  # type: ignore[arg-type]
    rt.add_check("consumer_stalled", lambda: _stall_check(consumer))
    assert rt.health()[0]
    consumer.stall.observe(7, now=0.0)  # work waiting since t=0, never acked
    ok, checks = rt.health()
    assert not ok and checks["consumer_stalled"]["critical"]
    assert checks["consumer_stalled"]["detail"].startswith("consumer detect-999 stalled: 7 waiting")
