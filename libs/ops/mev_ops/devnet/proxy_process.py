"""The HyperEVM stand-in as a detached process beside anvil: start, find, stop.

Like anvil, it leaves `proxy.pid` and `proxy.log` in the devnet data dir; the pid is checked
against /proc (its command line must run the proxy module) so a reused pid is never killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from mev_ops.devnet.anvil import AnvilError, port_in_use, process_cmdline, stop_pid
from mev_ops.devnet.hyperevm_proxy import STATS_PATH

PROXY_MODULE = "mev_ops.devnet.hyperevm_proxy"
PID_FILE = "proxy.pid"
LOG_FILE = "proxy.log"


def start_proxy(
    port: int, upstream: str, budget_per_minute: int, data_dir: Path, *, detached: bool = True,
    ready_timeout: float = 10.0,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """Start the stand-in on 127.0.0.1:`port` in front of `upstream`; returns once it answers."""
    if port_in_use(port):
        raise AnvilError(f"port {port} on 127.0.0.1 is already in use (devnet.proxy_port)")
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", PROXY_MODULE, "--upstream", upstream, "--port", str(port),
        "--budget-per-minute", str(budget_per_minute),
    ]  # fmt: skip
    with (data_dir / LOG_FILE).open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=detached,
        )  # fmt: skip
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AnvilError(f"the HyperEVM stand-in exited with code {proc.returncode}")
        try:
            if httpx.get(stats_url(port), timeout=1.0).status_code == 200:
                if detached:
                    (data_dir / PID_FILE).write_text(f"{proc.pid} {port}\n")
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AnvilError(f"the HyperEVM stand-in did not answer on port {port}")


def stats_url(port: int) -> str:
    return f"http://127.0.0.1:{port}{STATS_PATH}"


def proxy_stats(port: int) -> dict[str, Any]:
    """The stand-in's counts (GET /stats is not counted against the budget)."""
    return dict(httpx.get(stats_url(port), timeout=2.0).json())


def _is_proxy(pid: int) -> bool:
    cmdline = process_cmdline(pid)
    return bool(cmdline) and PROXY_MODULE in cmdline  # type: ignore[operator]


def find_proxy(data_dir: Path) -> tuple[int, int] | None:
    """(pid, port) of the detached stand-in recorded in data_dir, if it still runs."""
    try:
        pid_text, port_text = (data_dir / PID_FILE).read_text().split()
        pid, port = int(pid_text), int(port_text)
    except (FileNotFoundError, ValueError):
        return None
    return (pid, port) if _is_proxy(pid) else None


def stop_proxy(data_dir: Path, timeout: float = 5.0) -> int | None:
    """Stop the detached stand-in of data_dir; returns its pid, or None if none ran."""
    found = find_proxy(data_dir)
    if found is not None:
        stop_pid(found[0], timeout, _is_proxy)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    return found[0] if found else None
