"""A service's own ports, bound before it does any work: a port that is taken (another
service, a second copy of this one, an outgoing connection's source port) is a refusal that
names the key and the fix, not uvicorn's exit 3 after the service had started consuming."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from mev_common.settings import ServicePorts


class PortInUse(Exception):
    @classmethod
    def of(cls, service: str, key: str, host: str, port: int, exc: OSError) -> PortInUse:
        return cls(
            f"services.{service}.{key} {port} on {host} cannot be bound ({exc.strerror or exc}):"
            f" stop what holds it (`ss -ltnp 'sport = :{port}'`) or set a free port"
        )


def listen_on(service: str, key: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` for the health server (uvicorn serves it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise PortInUse.of(service, key, host, port, exc) from exc
    sock.set_inheritable(True)
    return sock


@dataclass
class OpenPorts:
    """The health server's listening socket and the running metrics server."""

    health: socket.socket
    metrics: Any

    def close(self) -> None:
        self.health.close()
        if isinstance(self.metrics, tuple) and self.metrics:
            with contextlib.suppress(Exception):
                self.metrics[0].shutdown()
                self.metrics[0].server_close()


def open_ports(
    service: str, host: str, ports: ServicePorts, registry: CollectorRegistry
) -> OpenPorts | PortInUse:
    """Both of a service's ports, or the refusal naming the one that cannot be bound."""
    try:
        health = listen_on(service, "health_port", host, ports.health_port)
    except PortInUse as exc:
        return exc
    try:
        served = start_http_server(ports.metrics_port, addr=host, registry=registry)
    except OSError as exc:
        health.close()
        return PortInUse.of(service, "metrics_port", host, ports.metrics_port, exc)
    return OpenPorts(health, served)
