"""A devnet (anvil + the full deployment), the embedded NATS and real service processes, for the
scenarios that drive the pipeline; plus scraping a service's Prometheus histogram.

Why real processes: a scenario measures what `make run` runs (its own event loop, its own
NATS connection), so nothing in the bench process flatters the number.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from mev_common.devnet.anvil import AnvilNode, free_port, start_anvil
from mev_common.devnet.deploy import deploy_devnet
from mev_common.nats_server import EmbeddedNats, start_embedded_nats
from mev_common.pipeline_status import Samples, histogram_quantile, parse_metrics

from tests.support.stack import ServiceProcess, write_config

CHAIN_ID = 31337
SEED = 1


@dataclass
class Stack:
    """The devnet, NATS and the services started so far; `stop()` ends them all."""

    base: Path
    node: AnvilNode
    nats: EmbeddedNats
    deployment: dict[str, Any]
    config: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def rpc(self, method: str, params: list[Any]) -> Any:
        reply = httpx.post(
            self.node.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=30,
        ).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def start(self, *names: str, env: dict[str, str] | None = None) -> None:
        for name in names:
            proc = ServiceProcess(name, self.config, self.base / f"{name}.log", env=env or {})
            self.services[name] = proc.start()
        for name in names:
            self.services[name].wait_health(200, timeout_s=60)

    def metrics(self, service: str) -> Samples:
        cfg = yaml.safe_load(self.config.read_text())
        port = cfg["services"][service]["metrics_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return parse_metrics(resp.read().decode())

    def stop(self) -> None:
        for proc in self.services.values():
            proc.stop()
        self.node.stop()
        self.nats.cleanup()


@contextlib.contextmanager
def devnet_stack(block_time: int | None = None, **sections: dict[str, Any]) -> Iterator[Stack]:
    """anvil (automine if `block_time` is None) with the seed-1 deployment, NATS, a config."""
    with tempfile.TemporaryDirectory(prefix="mev-bench-") as tmp:
        base = Path(tmp)
        node = start_anvil(free_port(), CHAIN_ID, None, base)
        nats = None
        try:
            deployment = deploy_devnet(
                node.rpc_url,
                CHAIN_ID,
                SEED,
                base / "bot.key",
                base / "deployment.json",
                block_time=block_time,
            )
            nats = start_embedded_nats(base / "nats")
            endpoint = {
                "name": "anvil",
                "url": node.rpc_url,
                "ws_url": node.rpc_url.replace("http", "ws"),
            }
            config = write_config(
                base,
                nats.url,
                CHAIN_ID,
                chain={"rpc_endpoints": [endpoint], "block_time_s": 1},
                contracts={"deployment_file": str(base / "deployment.json")},
                keys={"path": str(base / "bot.key")},
                **sections,
            )
            stack = Stack(base, node, nats, deployment, config)
        except BaseException:
            node.stop()
            if nats is not None:
                nats.cleanup()
            raise
        try:
            yield stack
        finally:
            stack.stop()


def histogram_counts(samples: Samples, name: str, **labels: str) -> dict[float, float]:
    """Cumulative bucket counts (upper bound -> count) of one labelled histogram."""
    out: dict[float, float] = {}
    for lbl, value in samples.get(f"{name}_bucket", []):
        if all(lbl.get(k) == v for k, v in labels.items()):
            bound = float(lbl["le"])
            out[bound] = out.get(bound, 0.0) + value
    return out


def window(before: dict[float, float], after: dict[float, float]) -> dict[float, float]:
    """The observations made between two scrapes (cumulative counts subtract)."""
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def window_quantile(counts: dict[float, float], q: float) -> float | None:
    """Prometheus' bucket-interpolated quantile of a window, in ms."""
    samples: Samples = {"h_bucket": [({"le": str(b)}, c) for b, c in counts.items()]}
    value = histogram_quantile(samples, "h", q)
    return None if value is None else value * 1000


def fraction_within(counts: dict[float, float], bound_s: float) -> float:
    """Share of a window's observations at or below a bucket bound (exact at a bound)."""
    total = counts.get(float("inf"), 0.0)
    return counts.get(bound_s, 0.0) / total if total else 0.0


def wait_until(check: Any, timeout_s: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every_s)
    return bool(check())
