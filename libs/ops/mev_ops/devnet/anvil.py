"""The anvil process: start it (attached for tests, detached for `devnet up`), find it, stop it.

Detached nodes leave `anvil.pid` and `anvil.log` in the data dir, so `devnet down` and a second
`devnet up` can find them; the pid is checked against /proc so a reused pid is never killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from mev_ops.devnet.artifacts import anvil_binary

# anvil's well-known public test mnemonic: account 0 deploys, accounts 1..8 are flow users.
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_ACCOUNTS = 10
DEVNET_BALANCE_ETH = 1_000_000
PID_FILE = "anvil.pid"
LOG_FILE = "anvil.log"


class AnvilError(RuntimeError):
    """anvil could not be started or reached."""


@dataclass
class AnvilNode:
    """A running anvil; `process` is set only in the process that started it attached."""

    pid: int
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; safe to call twice."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            return
        stop_pid(self.pid, timeout)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_anvil(
    port: int,
    chain_id: int,
    block_time: int | None,
    data_dir: Path,
    *,
    detached: bool = False,
    ready_timeout: float = 15.0,
    hardfork: str | None = None,
    gas_limit: int | None = None,
    load_state: Path | None = None,
) -> AnvilNode:
    """Start anvil on 127.0.0.1:`port` with fee ordering; `block_time` None means automine.

    `hardfork` (e.g. "shanghai") and `gas_limit` (per block) are anvil's defaults when None.
    `load_state`: a JSON state (anvil_dumpState, un-gzipped) to start from: its blocks, logs,
    accounts and storage, as if the transactions that made it had run here.

    Detached: in its own session (outlives this process), pid written to data_dir/anvil.pid.
    Either way its output goes to data_dir/anvil.log. Returns once the RPC answers.
    """
    if port_in_use(port):
        raise AnvilError(f"port {port} on 127.0.0.1 is already in use")
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(anvil_binary()),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chain-id", str(chain_id),
        "--mnemonic", DEVNET_MNEMONIC,
        "--accounts", str(DEVNET_ACCOUNTS),
        "--balance", str(DEVNET_BALANCE_ETH),
        "--order", "fees",
    ]  # fmt: skip
    if block_time is not None:
        cmd += ["--block-time", str(block_time)]
    if hardfork is not None:
        cmd += ["--hardfork", hardfork]
    if gas_limit is not None:
        cmd += ["--gas-limit", str(gas_limit)]
    if load_state is not None:
        cmd += ["--load-state", str(load_state)]
    log_path = data_dir / LOG_FILE
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=detached,
        )  # fmt: skip
    node = AnvilNode(pid=proc.pid, port=port, process=None if detached else proc)
    try:
        wait_for_rpc(node.rpc_url, ready_timeout, proc)
    except AnvilError:
        proc.kill()
        proc.wait()
        raise
    if detached:
        (data_dir / PID_FILE).write_text(f"{proc.pid} {port}\n")
    return node


def wait_for_rpc(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AnvilError(f"anvil exited with code {proc.returncode} (see its log)")
        try:
            if httpx.post(url, json=body, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AnvilError(f"anvil did not answer at {url} within {timeout:.0f} s")


def find_running(data_dir: Path) -> AnvilNode | None:
    """The detached anvil recorded in data_dir, if that pid is still an anvil process."""
    try:
        pid_text, port_text = (data_dir / PID_FILE).read_text().split()
        pid, port = int(pid_text), int(port_text)
    except (FileNotFoundError, ValueError):
        return None
    return AnvilNode(pid=pid, port=port) if _is_anvil(pid) else None


def stop_running(data_dir: Path, timeout: float = 5.0) -> AnvilNode | None:
    """Stop the detached anvil of data_dir; returns it, or None if none was running."""
    node = find_running(data_dir)
    if node is not None:
        node.stop(timeout)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    return node


def process_cmdline(pid: int) -> list[str] | None:
    """The live process's command line, or None if it is gone or a zombie."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state = stat.rsplit(")", 1)[-1].split()[0]
    return None if state == "Z" else [part.decode() for part in cmdline if part]


def _is_anvil(pid: int) -> bool:
    cmdline = process_cmdline(pid)
    return bool(cmdline) and Path(cmdline[0]).name == "anvil"  # type: ignore[index]


def stop_pid(pid: int, timeout: float, is_ours: Callable[[int], bool] = _is_anvil) -> None:
    """SIGTERM `pid` if `is_ours(pid)`, SIGKILL after `timeout`: a reused pid is never hit."""
    if not is_ours(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_ours(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
