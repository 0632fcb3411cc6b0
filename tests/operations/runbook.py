"""The one-host lines of docs/RUNBOOK.md, and a checkout-like site to run them in.

The runbook marks them in fenced blocks tagged `bash one-host` (run while the stack runs) and
`bash one-host-after-stop` (run once it stopped); `# exit N` ends a line expected to exit N.
A site is a temporary directory that looks like a checkout (`.venv` and `scripts` link to the
repository, `config/devnet.yaml` is the repository's with random ports), so every line runs
as typed from the repository root; only its port numbers are rewritten.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mev_ops.nats_server import free_port

from tests.support.stack import REPO, SERVICES

RUNBOOK = REPO / "docs/RUNBOOK.md"
_BLOCK = re.compile(r"^```bash (one-host(?:-after-stop)?)\n(.*?)^```$", re.M | re.S)
_EXIT = re.compile(r"#\s*exit (\d+)\s*$")
DOC_PORTS = {  # config/devnet.yaml's ports, as the runbook's lines spell them
    "ingest_health": 8081, "detect_health": 8082, "simulate_health": 8083,
    "submit_health": 8084, "ingest_metrics": 9191, "detect_metrics": 9192,
    "simulate_metrics": 9193, "submit_metrics": 9194, "nats": 4222, "anvil": 8545,
}  # fmt: skip


@dataclass(frozen=True)
class Line:
    tag: str
    command: str
    exit_code: int


def runbook_lines(tag: str) -> list[Line]:
    """Every command line of the blocks tagged `tag`, in document order."""
    lines = []
    for block_tag, body in _BLOCK.findall(RUNBOOK.read_text()):
        if block_tag != tag:
            continue
        for raw in body.splitlines():
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            match = _EXIT.search(text)
            lines.append(Line(tag, text, int(match.group(1)) if match else 0))
    return lines


def distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class Site:
    root: Path
    ports: dict[str, int]
    chain_id: int

    def rewrite(self, command: str) -> str:
        """The line with the devnet config's ports replaced by this site's."""
        mapping = {str(DOC_PORTS[k]): str(v) for k, v in self.ports.items()}
        return re.sub(r"\b(" + "|".join(mapping) + r")\b", lambda m: mapping[m.group(1)], command)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEV_")}
        return {**env, **extra}

    def run(self, command: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", self.rewrite(command)],
            cwd=self.root, capture_output=True, text=True, check=False, timeout=timeout_s,
            env=self.env(),
        )  # fmt: skip

    def mev_bot(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / ".venv/bin/mev-bot"), *args],
            cwd=self.root, capture_output=True, text=True, check=False, timeout=60,
            env=self.env(),
        )  # fmt: skip

    @property
    def db(self) -> Path:
        return self.root / "data/mev-bot.db"


def make_site(root: Path) -> Site:
    """A checkout-like directory: the repository's devnet config on random ports."""
    root.mkdir(parents=True, exist_ok=True)
    for name in (".venv", "scripts"):
        (root / name).symlink_to(REPO / name)
    config: dict[str, Any] = yaml.safe_load((REPO / "config/devnet.yaml").read_text())
    ports = dict(zip(DOC_PORTS, distinct_ports(len(DOC_PORTS)), strict=True))
    for name in SERVICES:
        config["services"][name] = {
            "health_port": ports[f"{name}_health"],
            "metrics_port": ports[f"{name}_metrics"],
        }
    config["nats"]["url"] = f"nats://127.0.0.1:{ports['nats']}"
    config["devnet"]["port"] = ports["anvil"]
    for endpoint in config["chain"]["rpc_endpoints"]:
        endpoint["url"] = f"http://127.0.0.1:{ports['anvil']}"
        endpoint["ws_url"] = f"ws://127.0.0.1:{ports['anvil']}"
    (root / "config").mkdir()
    (root / "config/devnet.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return Site(root, ports, int(config["chain"]["chain_id"]))
