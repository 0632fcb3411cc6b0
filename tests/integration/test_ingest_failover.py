"""Ingest with two RPC endpoints: one dies mid-run, or answers garbage; no block is lost.

The broken endpoint is a loopback TCP proxy in front of the real anvil (so it can be killed
mid-run), or a loopback HTTP server that answers 200 with bytes that are not JSON-RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Block, decode
from mev_ops.devnet.anvil import AnvilNode, free_port
from nats.js.api import DeliverPolicy

from tests.conftest import NatsEndpoint
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import ServiceProcess, write_config


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, Path]]:
    base = tmp_path_factory.mktemp("failover")
    node, _ = deployed_anvil(
        base, 31337, 1, base / "bot.key", base / "deployment.json", block_time=1
    )
    try:
        yield node, base / "deployment.json"
    finally:
        node.stop()


class TcpProxy:
    """Forwards loopback connections to `target_port`; `kill()` drops it and every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def kill(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)


class GarbageRpc:
    """An HTTP endpoint that answers every request 200 with a body that is not JSON."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests = 0

    async def start(self) -> asyncio.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                    await reader.readexactly(length)
                    self.requests += 1
                    body = b"<html>502 upstream garbage</html>"
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    await writer.drain()

        return await asyncio.start_server(handle, "127.0.0.1", self.port)


def config_with(
    tmp: Path, nats_url: str, deployment: Path, chain: int, urls: dict[str, str]
) -> Path:
    endpoints = [{"name": n, "url": u, "timeout_s": 1.0} for n, u in urls.items()]
    return write_config(
        tmp,
        nats_url,
        chain,
        chain={"rpc_endpoints": endpoints, "block_time_s": 1},
        contracts={"deployment_file": str(deployment)},
    )


async def published_blocks(bus: Bus, chain: int) -> list[Block]:
    sub = await bus.js.subscribe(
        subjects.blocks(chain), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    out = []
    try:
        while True:
            try:
                out.append(decode(Block, (await sub.next_msg(timeout=0.5)).data))
            except TimeoutError:
                return out
    finally:
        await sub.unsubscribe()


def assert_gap_free(blocks: list[Block]) -> None:
    numbers = [b.number for b in blocks]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert all(b.parent_hash == a.hash for a, b in itertools.pairwise(blocks))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bytes(resp.read())


def metric_lines(proc: ServiceProcess, name: str) -> list[str]:
    cfg = yaml.safe_load(proc.config.read_text())
    port = cfg["services"]["ingest"]["metrics_port"]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    return [line for line in text.splitlines() if line.startswith(name)]


async def test_killing_one_endpoint_fails_over_without_losing_a_block(
    devnet: tuple[AnvilNode, Path], nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    node, deployment = devnet
    proxy = await TcpProxy(node.port).start()
    # equal latency ranks by name: the proxy ("a-...") serves first
    config = config_with(
        tmp_path,
        nats_server.url,
        deployment,
        31337,
        {"a-proxy": f"http://127.0.0.1:{proxy.port}", "b-direct": node.rpc_url},
    )
    ingest = ServiceProcess("ingest", config, tmp_path / "ingest.log").start()
    try:
        ingest.wait_health(200)
        await asyncio.sleep(3.0)
        before = await published_blocks(bus, 31337)
        assert proxy.connections >= 1 and len(before) >= 2
        await proxy.kill()
        await asyncio.sleep(4.0)
        after = await published_blocks(bus, 31337)
        assert ingest.health_status() == 200
    finally:
        ingest.stop()
    assert after[-1].number >= before[-1].number + 3
    assert_gap_free(after)


async def test_garbage_answers_are_counted_and_skipped(
    devnet: tuple[AnvilNode, Path], nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    node, deployment = devnet
    garbage = GarbageRpc()
    server = await garbage.start()
    config = config_with(
        tmp_path,
        nats_server.url,
        deployment,
        31337,
        {"a-garbage": f"http://127.0.0.1:{garbage.port}", "b-direct": node.rpc_url},
    )
    ingest = ServiceProcess("ingest", config, tmp_path / "ingest.log").start()
    try:
        ingest.wait_health(200)
        first = await published_blocks(bus, 31337)
        await asyncio.sleep(3.0)
        later = await published_blocks(bus, 31337)
        errors = metric_lines(ingest, 'mev_bot_rpc_requests_total{endpoint="a-garbage"')
    finally:
        ingest.stop()
        server.close()
    assert garbage.requests >= 1
    assert later[-1].number >= first[-1].number + 2
    assert_gap_free(later)
    assert any('status="transport_error"' in line and not line.endswith(" 0.0") for line in errors)


async def test_chain_without_pending_feed_runs_block_driven(
    devnet: tuple[AnvilNode, Path], nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    node, deployment = devnet
    config = config_with(tmp_path, nats_server.url, deployment, 31337, {"only": node.rpc_url})
    text = config.read_text().replace("pending_feed: true", "pending_feed: false")
    config.write_text(text)
    ingest = ServiceProcess("ingest", config, tmp_path / "ingest.log").start()
    try:
        ingest.wait_health(200)
        first = await published_blocks(bus, 31337)
        await asyncio.sleep(2.5)
        later = await published_blocks(bus, 31337)
        health = json.loads(await asyncio.to_thread(fetch, ingest.health_url()))
        feed = metric_lines(ingest, "mev_bot_pending_feed_active")
    finally:
        ingest.stop()
    assert later[-1].number >= first[-1].number + 2
    assert health["checks"]["mempool"] == {
        "ok": True,
        "detail": "chain has no pending-tx feed: block-driven only",
        "critical": False,
    }
    assert feed == ["mev_bot_pending_feed_active 0.0"]
