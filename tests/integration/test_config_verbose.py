"""`--validate-config --verbose` against a real nats-server and real HTTP JSON-RPC on loopback.

The RPC side is a tiny HTTP server that speaks JSON-RPC's eth_chainId over the wire, so
httpx, the request body and the response parsing are all exercised for real.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_ops.cli import main
from mev_ops.nats_server import EmbeddedNats, free_port, start_embedded_nats

TOKEN = "Sup3rSecretT0ken"


@pytest.fixture(autouse=True)
def _no_mev_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.upper().startswith("MEV_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def nats() -> Iterator[EmbeddedNats]:
    server = start_embedded_nats()
    try:
        yield server
    finally:
        server.cleanup()


class ChainIdServer:
    """Answers eth_chainId with `chain_id` on every path (paths hold provider tokens)."""

    def __init__(self, chain_id: int) -> None:
        outer = self
        self.methods: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.methods.append(request["method"])
                body = json.dumps(
                    {"jsonrpc": "2.0", "id": request["id"], "result": hex(chain_id)}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # keep the CLI's stderr exactly what it printed

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def rpc_servers() -> Iterator[list[ChainIdServer]]:
    servers: list[ChainIdServer] = []
    yield servers
    for server in servers:
        server.close()


def write_config(tmp_path: Path, nats_url: str, endpoints: list[tuple[str, str]]) -> Path:
    config = {
        "chain": {
            "name": "loopback",
            "chain_id": 31337,
            "rpc_endpoints": [{"name": n, "url": u, "timeout_s": 2} for n, u in endpoints],
        },
        "nats": {"url": nats_url, "embedded": False, "connect_timeout_s": 2},
        "strategies": {"cyclic_arbitrage": {"max_gas_price": "50 gwei"}},
        "contracts": {"deployment_file": str(tmp_path / "deployment.json")},
        "keys": {"path": str(tmp_path / "bot.key")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def connectivity(out: str) -> list[str]:
    lines = out.splitlines()
    return lines[lines.index("connectivity:") + 1 :]


def test_reachable_nats_and_matching_rpc(
    tmp_path: Path,
    nats: EmbeddedNats,
    rpc_servers: list[ChainIdServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rpc = ChainIdServer(31337)
    rpc_servers.append(rpc)
    path = write_config(tmp_path, nats.url, [("local", f"{rpc.origin}/v2/{TOKEN}")])
    (tmp_path / "bot.key").write_text("ab" * 32)
    (tmp_path / "bot.key").chmod(0o600)

    code = main(["--validate-config", "--verbose", "--config", str(path)])
    out, err = capsys.readouterr()

    assert (code, err) == (0, "")
    assert rpc.methods == ["eth_chainId"]
    lines = connectivity(out)
    assert lines[0] == f"nats         {nats.url}: answers"
    assert re.fullmatch(
        rf"rpc          local {re.escape(rpc.origin)}/\*\*\*: chain id 31337 matches \(\d+ ms\)",
        lines[1],
    )
    assert "effective config (secrets masked):" in out.splitlines()
    assert f"    url: {rpc.origin}/***" in out.splitlines()
    assert TOKEN not in out


def test_chain_id_mismatch_exits_2(
    tmp_path: Path,
    nats: EmbeddedNats,
    rpc_servers: list[ChainIdServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    right, wrong = ChainIdServer(31337), ChainIdServer(999)
    rpc_servers.extend([right, wrong])
    path = write_config(
        tmp_path, nats.url, [("right", right.origin), ("wrong", f"{wrong.origin}/{TOKEN}")]
    )

    code = main(["--validate-config", "--verbose", "--config", str(path)])
    out, err = capsys.readouterr()

    assert code == 2
    assert err == (
        f"{path}: chain.chain_id: got 31337; expected 999, the chain id that rpc endpoint "
        f"wrong ({wrong.origin}/***) answers\n"
    )
    assert re.fullmatch(
        rf"rpc          wrong {re.escape(wrong.origin)}/\*\*\*: chain id 999 MISMATCH \(\d+ ms\)",
        connectivity(out)[2],
    )
    assert TOKEN not in out + err


def test_unreachable_nats_rpc_and_missing_key_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate-deployment.sh's connectivity step must be able to fail (issue 15)."""
    nats_url = f"nats://127.0.0.1:{free_port()}"
    rpc_url = f"http://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, nats_url, [("down", f"{rpc_url}/{TOKEN}")])

    code = main(["--validate-config", "--verbose", "--config", str(path)])
    out, err = capsys.readouterr()

    assert code == 1
    assert connectivity(out) == [
        f"nats         {nats_url}: UNREACHABLE (NoServersError)",
        f"rpc          down {rpc_url}/***: UNREACHABLE (ConnectError)",
    ]
    assert err.splitlines() == [
        f"{path}: keys.path: {tmp_path / 'bot.key'} does not exist; the bot cannot sign "
        "(create or mount it; --offline checks the file alone)",
        f"{path}: nats.url: {nats_url} is UNREACHABLE (NoServersError); start NATS or fix "
        "nats.url (--offline checks the file alone)",
        f"{path}: chain.rpc_endpoints: down {rpc_url}/*** is UNREACHABLE (ConnectError); fix "
        "the endpoint or its url (--offline checks the file alone)",
    ]
    assert TOKEN not in out + err


def test_offline_checks_the_file_alone_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nats_url = f"nats://127.0.0.1:{free_port()}"
    path = write_config(tmp_path, nats_url, [("down", f"http://127.0.0.1:{free_port()}")])

    code = main(["--validate-config", "--verbose", "--offline", "--config", str(path)])
    out, err = capsys.readouterr()

    assert (code, err) == (0, "")
    assert connectivity(out) == [
        "not checked (--offline)",
        f"warning: keys.path {tmp_path / 'bot.key'} does not exist (needed to sign bundles)",
    ]
