"""A devnet (anvil + the full deployment), the embedded NATS and real service processes, for the
scenarios that drive the pipeline; plus scraping a service's Prometheus histogram.

Why real processes: a scenario measures what `make run` runs (its own event loop, its own
NATS connection), so nothing in the bench process flatters the number. Latencies are read as
exact samples: every service logs each observation of its latency histogram to a file
(MEV_LATENCY_SAMPLES_DIR, mev_common.metrics.log_samples_to) that `Stack.latencies` tails.
NATS here is the embedded server without auth (the services connect with the config's plain
URL); `mev-bot run` turns auth on, which changes no hop we time as long as every subscription
a service makes is permitted (simulate's mempool hint was not until wave 9: `make run` had no
early victim traces while this bench had them; bench.makerun runs with auth).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from mev_common.metrics import SAMPLES_ENV
from mev_common.settings import KeySettings
from mev_ops.devnet.anvil import AnvilNode, free_port
from mev_ops.devnet.saved_state import deployed_anvil
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats
from mev_ops.pipeline_status import Samples, parse_metrics

from tests.support.stack import ServiceProcess, stop_all, write_config

CHAIN_ID = 31337
SEED = 1
DEVNET_CONFIG = Path(__file__).resolve().parents[1] / "config" / "devnet.yaml"


def make_run_lanes() -> int:
    """`make run`'s nonce lanes (config/devnet.yaml keys.lanes): with one lane, a backrun is
    refused while an unsettled trade of ours bids less, and the pending rows starve."""
    cfg = yaml.safe_load(DEVNET_CONFIG.read_text())
    return int(cfg.get("keys", {}).get("lanes", 1))


@dataclass
class Stack:
    """The devnet, NATS and the services started so far; `stop()` ends them all."""

    base: Path
    node: AnvilNode
    nats: EmbeddedNats
    deployment: dict[str, Any]
    config: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    log: LatencyLog | None = None

    @property
    def samples_dir(self) -> Path:
        return self.base / "samples"

    def latencies(self) -> dict[tuple[str, str, str], list[float]]:
        """Latency observations (ms) logged since the last call, by (service, metric, label)."""
        if self.log is None:
            self.log = LatencyLog(self.samples_dir)
        return self.log.take()

    def rpc(self, method: str, params: list[Any]) -> Any:
        reply = httpx.post(
            self.node.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=30,
        ).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber", []), 16)

    def send_mined(self, tx: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """Send `tx` from an unlocked account and return its receipt once mined.

        Why not read `latest` right after sending: anvil's automine mines after
        eth_sendTransaction has returned, so a read at once sometimes still sees the old head
        (5 of 300 sends in one run): the next read then jumps by two blocks."""
        tx_hash = self.rpc("eth_sendTransaction", [tx])
        deadline = time.monotonic() + timeout_s
        while (receipt := self.rpc("eth_getTransactionReceipt", [tx_hash])) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"tx {tx_hash} not mined after {timeout_s} s (automine off?)")
            time.sleep(0.002)
        return dict(receipt)

    def start(self, *names: str, env: dict[str, str] | None = None, replicas: int = 1) -> None:
        """Start services; `replicas` > 1 starts that many of each (members of the stage's
        shared consumer, each with ports of its own), keyed `<name>`, `<name>#2`, ..."""
        self.samples_dir.mkdir(exist_ok=True)
        started = []
        if replicas > 1:  # every replica must know it has peers (detect reads the whole mempool)
            cfg = yaml.safe_load(self.config.read_text())
            for name in names:
                cfg["services"][name]["replicas"] = replicas
            self.config.write_text(yaml.safe_dump(cfg))
        for name in names:
            for k in range(1, replicas + 1):
                key = name if k == 1 else f"{name}#{k}"
                extra = {SAMPLES_ENV: str(self.samples_dir), **(env or {})}
                if k > 1:
                    extra["MEV_INSTANCE"] = f"{name}-{k}"
                log_path = self.base / f"{key.replace('#', '-')}.log"
                proc = ServiceProcess(name, self.config_of(name, k), log_path, env=extra)
                self.services[key] = proc.start()
                started.append(key)
        for key in started:
            self.services[key].wait_health(200, timeout_s=60)

    def config_of(self, service: str, replica: int = 1) -> Path:
        """Replica k > 1 of a service runs on a copy of the config with free ports."""
        if replica == 1:
            return self.config
        path = self.config.with_name(f"{service}-{replica}.yaml")
        if not path.exists():
            cfg = yaml.safe_load(self.config.read_text())
            cfg["services"][service] |= {"health_port": free_port(), "metrics_port": free_port()}
            path.write_text(yaml.safe_dump(cfg))
        return path

    def metrics(self, service: str, replica: int = 1) -> Samples:
        cfg = yaml.safe_load(self.config_of(service, replica).read_text())
        port = cfg["services"][service]["metrics_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return parse_metrics(resp.read().decode())

    def stop(self) -> None:
        """Every service at once (stop_all): nothing is read from the stack after its stop."""
        stop_all(self.services.values())
        self.node.stop()
        self.nats.cleanup()


@contextlib.contextmanager
def devnet_stack(
    block_time: int | None = None, lanes: int | None = None, **sections: dict[str, Any]
) -> Iterator[Stack]:
    """anvil (automine if `block_time` is None) with the seed-1 deployment, NATS, a config;
    `lanes`: submit's nonce lanes (keys.lanes; default `make run`'s), their keys funded and
    authorized. The deployment is made once per process and lane count, later stacks start
    from its state dump (mev_ops.devnet.saved_state): the same chain, in ~0.3 s instead of ~6."""
    lanes = make_run_lanes() if lanes is None else lanes
    with tempfile.TemporaryDirectory(prefix="mev-bench-") as tmp:
        base = Path(tmp)
        lane_paths = [Path(p) for p in KeySettings(path=str(base / "bot.key"),
                                                   lanes=lanes).lane_paths()[1:]]  # fmt: skip
        node, deployment = deployed_anvil(
            base, CHAIN_ID, SEED, base / "bot.key", base / "deployment.json",
            block_time=block_time, lane_paths=lane_paths,
        )  # fmt: skip
        nats = None
        try:
            nats = start_embedded_nats(base / "nats")
            endpoint = {
                "name": "anvil",
                "url": node.rpc_url,
                "ws_url": node.rpc_url.replace("http", "ws"),
                "rate_limit_rps": 1000,  # as config/devnet.yaml (`make run`); the default is 25
            }
            config = write_config(
                base,
                nats.url,
                CHAIN_ID,
                chain={"rpc_endpoints": [endpoint], "block_time_s": 1},
                contracts={"deployment_file": str(base / "deployment.json")},
                keys={"path": str(base / "bot.key"), "lanes": lanes},
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


class LatencyLog:
    """Tails the services' sample files: each line "metric labels seconds" (one observation)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.offsets: dict[Path, int] = {}

    def take(self) -> dict[tuple[str, str, str], list[float]]:
        out: dict[tuple[str, str, str], list[float]] = {}
        for path in sorted(self.directory.glob("*.samples")):
            service = path.name.rsplit("-", 1)[0]
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line being written waits for next time
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            for line in complete.decode().splitlines():
                metric, labels, seconds = line.split(" ")
                out.setdefault((service, metric, labels), []).append(float(seconds) * 1000)
        return out


def merge(into: dict[tuple[str, str, str], list[float]], more: dict) -> None:
    """Add one `LatencyLog.take()` to another."""
    for key, values in more.items():
        into.setdefault(key, []).extend(values)


def wait_until(check: Any, timeout_s: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every_s)
    return bool(check())


def _health_head(stack: Stack, key: str, check: str) -> int | None:
    """The block a service's /health `check` stands on (None: not yet, or no answer in time)."""
    try:
        with urllib.request.urlopen(stack.services[key].health_url(), timeout=5) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # 503 (a check failing) still says where it stands
        body = exc.read()
    except OSError:
        return None
    detail = json.loads(body)["checks"][check]["detail"]
    head = detail.get("block" if check == "pools" else "head")
    return int(head) if head is not None and detail.get("loaded", True) else None


def heads_at(stack: Stack, block: int) -> bool:
    """Every detect replica's pools and simulate's warm state stand on `block` or later."""
    keys = [(k, "pools") for k in stack.services if k.split("#")[0] == "detect"]
    keys += [("simulate", "simulator")] if "simulate" in stack.services else []
    return all((_health_head(stack, k, c) or -1) >= block for k, c in keys)


def wait_heads(stack: Stack, block: int, timeout_s: float = 20.0) -> bool:
    """Until the pipeline stands on `block` (mined by then or later). Why not a fixed sleep:
    state set by anvil_set* (funded senders) is only in a block once the next one is mined, and
    a pending swap is applied at detect's head: this is exactly what such a sleep waited for."""
    return wait_until(lambda: heads_at(stack, block), timeout_s, 0.05)
