"""Three local nats-server processes as one JetStream cluster, for tests and the bench.

Each node gets random client and route ports and its own temp store; they route to each
other and can place a stream on every node before `start()` returns. Streams declared with
`nats.replicas: 3` then keep a copy on every node, and a client given all three URLs
(`urls`) fails over when one dies. `kill(name)` is SIGKILL, as a chaos test needs.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
from mev_common.stream_decl import cluster_settling
from nats.js.api import StreamConfig, StreamInfo

from mev_ops.nats_server import free_port, nats_server_binary, wait_for_port

CLUSTER_NAME = "mev"
PROBE_STREAM = "MEV_CLUSTER_PROBE"  # placed and deleted once by start(): the readiness test


@dataclass
class ClusterNode:
    name: str
    port: int
    route_port: int
    store_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


@dataclass
class NatsCluster:
    """`size` nodes named n1..nN; `urls` lists every client URL."""

    size: int = 3
    root: Path | None = None
    nodes: list[ClusterNode] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout_s: float = 30.0) -> NatsCluster:
        if self.root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mev-nats-cluster-")
            self.root = Path(self._tmp.name)
        self.nodes = [
            ClusterNode(f"n{i + 1}", free_port(), free_port(), self.root / f"n{i + 1}")
            for i in range(self.size)
        ]
        for node in self.nodes:
            self._launch(node)
        for node in self.nodes:
            wait_for_port("127.0.0.1", node.port, timeout_s)
        # in a thread: callable from sync code and from inside a running loop alike
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _wait_jetstream(self.urls, self.size, timeout_s)).result()
        return self

    def _launch(self, node: ClusterNode) -> None:
        node.store_dir.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(
            f'"nats-route://127.0.0.1:{other.route_port}"'
            for other in self.nodes
            if other is not node
        )
        conf = node.store_dir / "nats-server.conf"
        conf.write_text(
            f'server_name: "{node.name}"\n'
            f'listen: "127.0.0.1:{node.port}"\n'
            f'jetstream {{\n  store_dir: "{node.store_dir.resolve()}"\n}}\n'
            f'cluster {{\n  name: "{CLUSTER_NAME}"\n'
            f'  listen: "127.0.0.1:{node.route_port}"\n  routes: [{routes}]\n}}\n'
        )
        log = open(node.store_dir / "nats-server.log", "ab")
        node.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def node(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    def kill(self, name: str) -> None:
        """SIGKILL one node (its store stays: `restart(name)` brings it back)."""
        node = self.node(name)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()
        node.proc = None

    def restart(self, name: str) -> None:
        node = self.node(name)
        self._launch(node)
        wait_for_port("127.0.0.1", node.port, 15.0)

    def stop(self) -> None:
        for node in self.nodes:
            proc, node.proc = node.proc, None
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


async def _wait_jetstream(urls: list[str], size: int, timeout_s: float) -> None:
    """Until the cluster can place a stream on all `size` nodes: a meta leader answering
    account info is not enough, it refuses an R3 stream ("no suitable peers for placement")
    until it knows every peer (CI saw that on a fresh cluster under load)."""
    deadline = time.monotonic() + timeout_s
    nc = await nats.connect(servers=urls, connect_timeout=2)
    probe = StreamConfig(name=PROBE_STREAM, subjects=[f"{PROBE_STREAM}.probe"], num_replicas=size)
    try:
        js = nc.jetstream(timeout=2)
        while True:
            try:
                await js.add_stream(probe)
                await js.delete_stream(PROBE_STREAM)
                return
            except Exception as exc:
                if not cluster_settling(exc) or time.monotonic() > deadline:
                    raise TimeoutError(
                        f"JetStream cluster cannot place an R{size} stream after {timeout_s}s: "
                        f"{exc!r}"
                    ) from exc
                await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def stream_info(url: str | list[str], stream: str, deadline_s: float = 30.0) -> StreamInfo:
    """`stream`'s info, asked again while the cluster answers nothing: a JetStream API request
    times out (or finds no responder) while a leader is elected or a node catches up."""
    nc = await nats.connect(servers=[url] if isinstance(url, str) else url)
    deadline = time.monotonic() + deadline_s
    try:
        while True:
            try:
                return await nc.jetstream(timeout=5).stream_info(stream)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await nc.close()


async def stream_leader(url: str | list[str], stream: str) -> str:
    """The server name leading `stream` (R3: the node whose loss forces an election)."""
    info = await stream_info(url, stream)
    assert info.cluster is not None and info.cluster.leader is not None
    return str(info.cluster.leader)
