"""`mev-bot run`: NATS and the four services come up healthy; SIGINT (Ctrl-C) ends every one.
With `nats.credentials_dir`, as config/devnet.yaml has it: the credentials and the server's
users are made on first start, each service connects as its own user, a stranger is refused."""

from __future__ import annotations

import asyncio
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nats
import nats.errors
import psutil
import pytest
import yaml
from mev_ops.nats_server import free_port

from tests.support.stack import REPO, SERVICES, ServiceProcess, write_config


@pytest.mark.timeout(90)
def test_run_starts_everything_healthy_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"nats://127.0.0.1:{free_port()}",
        106,
        nats={
            "embedded": True,
            "store_dir": str(tmp_path / "nats"),
            "credentials_dir": str(tmp_path / "nats-auth"),
        },
    )
    cfg = yaml.safe_load(config.read_text())
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "-m", "mev_ops.cli", "--config", str(config), "run"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        probes = [ServiceProcess(n, config, tmp_path / f"{n}.log") for n in SERVICES]
        deadline = started + 30
        while time.monotonic() < deadline and any(p.health_status() != 200 for p in probes):
            assert stack.poll() is None, log_path.read_text()
            time.sleep(0.2)
        assert [p.health_status() for p in probes] == [200, 200, 200, 200], log_path.read_text()
        children = psutil.Process(stack.pid).children(recursive=True)
        names = sorted(_program(c.cmdline()) for c in children)
        assert names == sorted([f"services.{n}" for n in SERVICES] + ["nats-server"])
        for user in (*SERVICES, "operator"):
            seed = tmp_path / "nats-auth" / f"{user}.nk"
            assert stat.S_IMODE(seed.stat().st_mode) == 0o600
        with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
            asyncio.run(nats.connect(cfg["nats"]["url"], allow_reconnect=False))
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(timeout=30)
    assert code == 0, log_path.read_text()
    assert [c for c in children if c.is_running() and c.status() != "zombie"] == []
    text = log_path.read_text()
    for name in SERVICES:
        assert f"{name} exited with code 0" in text
    assert cfg["nats"]["embedded"] is True


def _program(cmdline: list[str]) -> str:
    """`services.detect` for `python -m services.detect ...`, else the executable's name."""
    if "-m" in cmdline:
        return cmdline[cmdline.index("-m") + 1]
    return Path(cmdline[0]).name
