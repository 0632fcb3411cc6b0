"""`mev-bot devnet up / flow / down` as an operator runs them: real processes, 1 s blocks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mev_ops.devnet.anvil import free_port, port_in_use
from mev_ops.devnet.artifacts import repo_root


def mev_bot(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mev_ops.cli", "--config", "devnet.yaml", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The default devnet config moved to a free port; data/ lands in this temp dir."""
    config = yaml.safe_load((repo_root() / "config/devnet.yaml").read_text())
    port = free_port()
    config["devnet"]["port"] = port
    endpoint = config["chain"]["rpc_endpoints"][0]
    endpoint["url"], endpoint["ws_url"] = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    (tmp_path / "devnet.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_up_flow_down(workdir: Path) -> None:
    try:
        up = mev_bot(workdir, "devnet", "up", "--seed", "3")
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith("devnet up in ")
        assert (workdir / "data/devnet/deployment.json").is_file()
        assert (workdir / "data/keys/devnet.key").stat().st_mode & 0o777 == 0o600
        key = (workdir / "data/keys/devnet.key").read_text().strip()
        assert key not in up.stdout + up.stderr

        again = mev_bot(workdir, "devnet", "up")
        assert again.returncode == 0
        assert "devnet already running" in again.stdout and "seed 3" in again.stdout

        flow = mev_bot(workdir, "devnet", "flow", "--seed", "1", "--rate", "8", "--blocks", "3")
        assert flow.returncode == 0, flow.stderr
        lines = [x for x in flow.stdout.splitlines() if x.startswith("block ")]
        assert len(lines) == 3
        pattern = r"block \d+ +sent +\d+ +mined +\d+ +reverted +\d+ +WETH/USDC A [\d,.]+ +B [\d,.]+"
        assert all(re.match(pattern, line) for line in lines), lines

        rival = mev_bot(workdir, "devnet", "flow", "--rate", "8", "--blocks", "2", "--rival", "10")
        assert rival.returncode == 0, rival.stderr
        assert "rival: 4 accounts, reacting 10 ms after a swap" in rival.stdout
        assert re.search(r"rival: saw \d+ V2 swaps, \d+ worth a backrun, sent \d+", rival.stdout)
        bad = mev_bot(workdir, "devnet", "flow", "--rival", "-1")
        assert bad.returncode == 2 and "--rival -1: a latency in ms" in bad.stderr
    finally:
        down = mev_bot(workdir, "devnet", "down")
    assert down.returncode == 0 and "devnet stopped" in down.stdout
    port = yaml.safe_load((workdir / "devnet.yaml").read_text())["devnet"]["port"]
    assert not port_in_use(port)
    assert "not running" in mev_bot(workdir, "devnet", "down").stdout
