"""`mev-bot devnet up --profile hyperevm`: chain 999, 2M-gas blocks, shanghai, the stand-in.

Real processes as an operator runs them; the config is config/devnet-hyperevm.yaml moved to free
ports and a temp dir.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mev_ops.devnet.anvil import free_port, port_in_use
from mev_ops.devnet.artifacts import repo_root
from mev_ops.devnet.proxy_process import proxy_stats


def mev_bot(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mev_ops.cli", "--config", "hyper.yaml", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def rpc(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return dict(httpx.post(url, json=body, timeout=10).json())


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    config = yaml.safe_load((repo_root() / "config/devnet-hyperevm.yaml").read_text())
    anvil_port, proxy_port = free_port(), free_port()
    config["devnet"]["port"], config["devnet"]["proxy_port"] = anvil_port, proxy_port
    config["chain"]["rpc_endpoints"][0]["url"] = f"http://127.0.0.1:{proxy_port}"
    (tmp_path / "hyper.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_up_deploys_the_storage_build_on_shanghai_behind_the_stand_in(workdir: Path) -> None:
    config = yaml.safe_load((workdir / "hyper.yaml").read_text())
    anvil = f"http://127.0.0.1:{config['devnet']['port']}"
    proxy = config["chain"]["rpc_endpoints"][0]["url"]
    try:
        up = mev_bot(workdir, "devnet", "up", "--profile", "hyperevm")
        assert up.returncode == 0, up.stderr
        assert "HyperEVM stand-in on " + proxy in up.stdout
        deployment = yaml.safe_load((workdir / "data/hyperevm/deployment.json").read_text())
        assert deployment["chain_id"] == 999
        assert deployment["executor"]["build"] == "ExecutorStorageCommit"

        latest = rpc(anvil, "eth_getBlockByNumber", ["latest", False])["result"]
        assert int(latest["gasLimit"], 16) == 2_000_000  # restored after the deploy
        # pre-Cancun: TSTORE is not an opcode there (PUSH0, shanghai's, is); creation code
        # `PUSH1 1, PUSH0, TSTORE|SSTORE, STOP`
        tstore = rpc(anvil, "eth_call", [{"data": "0x60015f5d00"}, "latest"])
        assert "NotActivated" in str(tstore.get("error")), tstore
        assert rpc(anvil, "eth_call", [{"data": "0x60015f5500"}, "latest"])["result"] == "0x"

        assert rpc(proxy, "eth_chainId", [])["result"] == hex(999)
        executor = deployment["executor"]["address"]
        code = rpc(proxy, "eth_getCode", [executor, "latest"])["result"]
        built = json.loads((repo_root() / "contracts/build/ExecutorStorageCommit.json").read_text())
        assert code == built["deployedBytecode"]
        assert rpc(proxy, "eth_getCode", [executor, hex(1)])["error"]["message"] == (
            "only the latest block is supported"
        )

        flow = mev_bot(workdir, "devnet", "flow", "--rate", "4", "--blocks", "3")
        assert flow.returncode == 0, flow.stderr
        assert "0 reverted" in flow.stdout.splitlines()[-1]
        stats = proxy_stats(config["devnet"]["proxy_port"])
        # the flow's users talk to anvil: only this test's four calls went through the stand-in
        assert stats["calls"] == {"eth_chainId": 1, "eth_getCode": 2}
        assert stats["refused"] == {"eth_getCode": {"state_not_latest": 1}}
    finally:
        down = mev_bot(workdir, "devnet", "down")
    assert down.returncode == 0, down.stderr
    assert "HyperEVM stand-in stopped" in down.stdout and "devnet stopped" in down.stdout
    assert not port_in_use(config["devnet"]["port"])
    assert not port_in_use(config["devnet"]["proxy_port"])


def test_profile_must_match_the_config(tmp_path: Path) -> None:
    config = yaml.safe_load((repo_root() / "config/devnet.yaml").read_text())
    (tmp_path / "hyper.yaml").write_text(yaml.safe_dump(config))
    refused = mev_bot(tmp_path, "devnet", "up", "--profile", "hyperevm")
    assert refused.returncode == 2
    assert "devnet.profile is not hyperevm" in refused.stderr
