"""`mev-bot run` as a child process, with a timeline of its start-up up to the first landed trade.

Where do the seconds from `mev-bot run` to the first trade go? The watcher stamps every output
line as it arrives (the supervisor's stdout is piped through here, then written to the log file)
and polls what has no line of its own: the devnet's RPC (anvil up), the deployment file (deploy
done), each service's /health, the services' /metrics (first opportunity, first bundle) and the
ledger (first landed trade). `timeline()` lists each first occurrence in seconds from the launch;
`cpu_seconds()` the CPU each process of the run has used so far (load-independent: on a busy
host the wall-clock figures stretch, the CPU ones do not).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from mev_common.settings import Settings
from mev_ops.pipeline_status import parse_metrics, pipeline_status

from tests.support.stack import REPO

SERVICES = ("ingest", "detect", "simulate", "submit")
# first output line matching -> event name
LINE_EVENTS = (
    ("nats up", re.compile(r"^nats +\| nats-server with JetStream")),
    *((f"{s} imported", re.compile(rf"^{s} +\| \S+ INFO +service started")) for s in SERVICES),
    ("devnet up (deployed)", re.compile(r"^devnet +\| devnet up in ")),
    ("flow sending", re.compile(r"^flow +\| flow: seed")),
    ("first flow swaps mined", re.compile(r"^flow +\| block \d+ +sent +\d+ +mined +[1-9]")),
    ("first trade sent", re.compile(r"^submit +\| \S+ INFO +tx sent")),
    ("first trade landed (log)", re.compile(r"^submit +\| .*bundle settled .*status=included")),
)


class RunWatch:
    """One `mev-bot run`: output teed to `log_path`, events stamped from the launch."""

    def __init__(self, config: Path, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.events: dict[str, float] = {}
        self._cpu: dict[int, tuple[str, float]] = {}  # pid -> (label, CPU s when last seen)
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.launched = time.time()  # the last run's deployment file is older
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mev_ops.cli", "--config", str(config), "run"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._tee, daemon=True)
        self._reader.start()
        self._poller_stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    # -- events -------------------------------------------------------------------------------
    def mark(self, name: str, at: float | None = None) -> None:
        with self._lock:
            self.events.setdefault(name, (at or time.monotonic()) - self.started)

    def _tee(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for raw in iter(self.proc.stdout.readline, b""):
                now = time.monotonic()
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace")
                for name, pattern in LINE_EVENTS:
                    if name not in self.events and pattern.search(line):
                        self.mark(name, now)

    def _poll(self) -> None:
        s = self.settings
        rpc_url = s.chain.rpc_endpoints[0].url
        deployment = Path(s.contracts.deployment_file or "")
        host = s.services.host
        launched = self.launched
        health = {n: f"http://{host}:{getattr(s.services, n).health_port}/health" for n in SERVICES}
        metrics = {
            n: f"http://{host}:{getattr(s.services, n).metrics_port}/metrics" for n in SERVICES
        }
        polls = 0
        while not self._poller_stop.wait(0.1):
            polls += 1
            if polls % 5 == 1:
                self._sample_cpu()
            if "anvil answers" not in self.events and _answers(rpc_url):
                self.mark("anvil answers")
            if "deployment file written" not in self.events and _newer(deployment, launched):
                self.mark("deployment file written")
            for name, url in health.items():
                if f"{name} healthy" not in self.events and _get(url) is not None:
                    self.mark(f"{name} healthy")
            if "first bundle simulated" in self.events:
                continue
            samples = {}
            for name in ("detect", "simulate"):
                text = _get(metrics[name])
                if text is not None:
                    samples[name] = parse_metrics(text)
            status = pipeline_status(samples)
            if status.opportunities:
                self.mark("first opportunity")
            if status.simulated:
                self.mark("first bundle simulated")

    def stop_polling(self) -> None:
        self._poller_stop.set()
        self._poller.join(timeout=5)

    # -- reports ------------------------------------------------------------------------------
    def timeline(self) -> list[tuple[str, float]]:
        with self._lock:
            return sorted(self.events.items(), key=lambda kv: kv[1])

    def _sample_cpu(self) -> None:
        """Every process of the run's CPU so far; kept after it exits (`devnet up`)."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in procs:
            try:
                with p.oneshot():
                    times = p.cpu_times()
                    label = _label(p.cmdline())
            except psutil.Error:
                continue
            with self._lock:
                self._cpu[p.pid] = (label, times.user + times.system)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU (user + system) by what the process runs: the supervisor, each service, ..."""
        self._sample_cpu()
        out: dict[str, float] = {}
        with self._lock:
            for label, cpu in self._cpu.values():
                out[label] = out.get(label, 0.0) + cpu
        return out

    def report(self, title: str) -> str:
        rows = [f"{title} (seconds from `mev-bot run`):"]
        rows += [f"  {t:6.1f}  {name}" for name, t in self.timeline()]
        cpu = self.cpu_seconds()
        if cpu:
            rows.append(
                "  CPU s so far: "
                + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
                + f"  (total {sum(cpu.values()):.1f})"
            )
        return "\n".join(rows)

    def wait_until(self, timeout_s: float, check: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()[-6000:]
            found = check()
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s} s:\n{self.log_path.read_text()[-6000:]}")


def _label(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    for s in SERVICES:
        if f"services.{s}" in text:
            return s
    for word in ("flow", "up", "down"):
        if f"devnet {word}" in text:
            return f"devnet {word}"
    if "anvil" in text:
        return "anvil"
    if "nats-server" in text:
        return "nats-server"
    if "mev_ops.cli" in text:
        return "supervisor"
    return Path(cmdline[0]).name if cmdline else "?"


def _newer(path: Path, than: float) -> bool:
    try:
        return path.stat().st_mtime >= than
    except OSError:
        return False


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return resp.read().decode() if resp.status == 200 else None
    except OSError:
        return None


def _answers(url: str) -> bool:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=0.5) as resp:
            return resp.status == 200
    except OSError:
        return False
