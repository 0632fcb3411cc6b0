"""Test support: write a config for a test, run real service processes, poll their health."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mev_ops.nats_server import free_port

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "detect", "simulate", "submit")


def distinct_free_ports(count: int) -> list[int]:
    """`count` free ports, all different: the OS may hand the same free port out twice in a
    row, and two services on one port make the config invalid."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def write_config(tmp: Path, nats_url: str, chain_id: int, **sections: dict[str, Any]) -> Path:
    """A devnet-like config with random ports, the given NATS and a private SQLite file."""
    tmp.mkdir(parents=True, exist_ok=True)
    services: dict[str, Any] = {"host": "127.0.0.1", "shutdown_timeout_s": 10}
    ports = distinct_free_ports(2 * len(SERVICES) + 1)  # the last: a dead RPC URL
    for i, name in enumerate(SERVICES):
        services[name] = {"health_port": ports[2 * i], "metrics_port": ports[2 * i + 1]}
    config: dict[str, Any] = {
        "chain": {
            "name": "test",
            "chain_id": chain_id,
            "rpc_endpoints": [{"name": "none", "url": f"http://127.0.0.1:{ports[-1]}"}],
            "pending_feed": True,
        },
        "nats": {"url": nats_url, "embedded": False, "ack_wait_s": 2, "nak_delay_s": 0.1},
        "services": services,
        "strategies": {
            "cyclic_arbitrage": {"min_profit": "0.0001 ether", "max_gas_price": "50 gwei"},
            "cross_dex_arbitrage": {"min_profit": "0.0001 ether", "max_gas_price": "50 gwei"},
            "backrun": {"min_profit": "0.0001 ether", "max_gas_price": "50 gwei"},
        },
        "contracts": {"deployment_file": str(tmp / "deployment.json")},
        "database": {"path": str(tmp / "mev-bot.db")},
        "keys": {"path": str(tmp / "bot.key")},
    }
    for key, value in sections.items():
        config.setdefault(key, {}).update(value)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def node_config(
    tmp: Path,
    nats_url: str,
    chain_id: int,
    rpc_url: str,
    deployment: Path,
    **sections: dict[str, Any],
) -> Path:
    """write_config for a stack on one anvil at `rpc_url` (its WebSocket for the pending feed,
    1 s blocks) with its deployment file; `sections` as write_config's."""
    endpoint = {"name": "anvil", "url": rpc_url, "ws_url": rpc_url.replace("http://", "ws://")}
    return write_config(
        tmp,
        nats_url,
        chain_id,
        chain={"rpc_endpoints": [endpoint], "block_time_s": 1},
        contracts={"deployment_file": str(deployment)},
        **sections,
    )


@dataclass
class ServiceProcess:
    """One real service process (`python -m services.<name>`), output kept in a log file."""

    name: str
    config: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    relay: bool = False  # run the pass-through stage of tests.support.relay under this name
    module: str | None = None  # run this module instead (a test wrapper of the service)

    def start(self) -> ServiceProcess:
        log = open(self.log_path, "ab")
        module = (
            ["tests.support.relay", "--stage", self.name]
            if self.relay
            else [self.module or f"services.{self.name}"]
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *module, "--config", str(self.config)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MEV_INSTANCE": f"{self.name}-test", **self.env},
        )
        return self

    def health_url(self) -> str:
        cfg = yaml.safe_load(self.config.read_text())
        return f"http://127.0.0.1:{cfg['services'][self.name]['health_port']}/health"

    def health_status(self) -> int | None:
        try:
            with urllib.request.urlopen(self.health_url(), timeout=1) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None

    def wait_health(self, status: int = 200, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.logs()}")
            if self.health_status() == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} /health never {status}:\n{self.logs()}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def run_to_exit(
    service: str, config: Path, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`python -m services.<service> --config <config>` until it exits by itself (a refusal)."""
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=dict(os.environ),
    )


def stop_all(procs: Iterable[ServiceProcess]) -> None:
    """SIGTERM every running process first, then wait for each (SIGKILL past 15 s): they drain
    at once instead of one after another (each takes ~0.2-0.7 s to finish its in-flight work).
    Not for a test whose assertions need upstream stages stopped before downstream ones."""
    running = [p for p in procs if p.proc is not None and p.proc.poll() is None]
    for proc in running:
        proc.signal(signal.SIGTERM)
    for proc in running:
        assert proc.proc is not None
        try:
            proc.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.proc.kill()
            proc.proc.wait()


def pools_detail(proc: ServiceProcess) -> dict[str, Any]:
    """A detect's /health `pools` check detail."""
    with urllib.request.urlopen(proc.health_url(), timeout=2) as resp:
        return dict(json.loads(resp.read())["checks"]["pools"]["detail"])


def pools_block(proc: ServiceProcess) -> int | None:
    """The block a detect replica's pools are at (its /health `pools` check), once loaded."""
    pools = pools_detail(proc)
    return int(pools["block"]) if pools["loaded"] else None


def metric_value(proc: ServiceProcess, series: str) -> float:
    """The sum of every sample of `series` (name and labels as written) on its /metrics."""
    cfg = yaml.safe_load(proc.config.read_text())
    port = cfg["services"][proc.name]["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(series))
