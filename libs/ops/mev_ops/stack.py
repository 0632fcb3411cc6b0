"""`mev-bot run` (what `make run` starts): the embedded stack in the foreground.

With a `devnet:` section, starts `mev-bot devnet up` first (its deploy is the longest path to a
first trade), then nats-server with JetStream (store under nats.store_dir) when `nats.embedded`,
then the four services and the devnet flow as child processes (they wait for the deployment),
prints their logs prefixed per service in readable form, and on Ctrl-C or SIGTERM stops the
services first (SIGTERM, they drain and ack), then the flow, the devnet and NATS. Children
run in their own session, so the terminal's Ctrl-C reaches only this supervisor, and they get
SIGTERM if the supervisor itself dies (PR_SET_PDEATHSIG): no process is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
from mev_common.settings import ConfigError, Settings, load_settings

from mev_ops.nats_server import EmbeddedNats

SERVICES = ("ingest", "detect", "simulate", "submit")
COLORS = {
    "ingest": 36,
    "detect": 35,
    "simulate": 33,
    "submit": 32,
    "nats": 34,
    "stack": 37,
    "devnet": 31,
    "flow": 90,
    "status": 97,
}
_print_lock = threading.Lock()
HEALTHY_WITHIN_S = 60.0  # from spawn, the devnet deploy included
FLOW_WAITS_S = 300.0  # for the deployment: `devnet up` on a busy host


def emit(source: str, text: str) -> None:
    color = COLORS.get(source, 37) if sys.stdout.isatty() else None
    label = f"{source:<8}"
    label = f"\033[{color}m{label}\033[0m" if color else label
    with _print_lock:
        print(f"{label} | {text}", flush=True)


def render(line: str) -> str:
    """A JSON log line as `HH:MM:SS.mmm LEVEL message key=value ...`; other lines unchanged."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line.rstrip()
    if not isinstance(entry, dict) or "msg" not in entry:
        return line.rstrip()
    ts = entry.pop("ts", time.time())
    stamp = time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"
    level = entry.pop("level", "INFO")
    msg = entry.pop("msg")
    for key in ("service", "logger"):
        entry.pop(key, None)
    extras = " ".join(f"{k}={v}" for k, v in entry.items())
    return f"{stamp} {level:<7} {msg}" + (f"  {extras}" if extras else "")


_last_errors: dict[str, str] = {}


def _pipe_lines(source: str, stream: IO[bytes]) -> None:
    for raw in iter(stream.readline, b""):
        line = render(raw.decode("utf-8", "replace"))
        if " ERROR " in line or "Traceback" in line or line.endswith("Error"):
            _last_errors[source] = line
        emit(source, line)


def crash_advice(name: str, code: int | None, config: Path) -> list[str]:
    """What the operator does after a service crashed `mev-bot run` (printed, then exit 1)."""
    cfg = f"--config {config}"
    lines = [
        f"{name} exited unexpectedly with code {code}: the stack is stopping",
        f"  its log: the `{name:<8} |` lines above"
        + (f"; last error: {_last_errors[name]}" if name in _last_errors else ""),
        f"  next: fix what that error names, then `mev-bot run {cfg}` again;"
        f" `mev-bot {cfg} status` shows the control values in force",
        "  a bad control value is rejected and logged by the services, not fatal; once the stack"
        f" runs, set a value back with `mev-bot {cfg} --adjust-rpc-rate 1` (or `--resume`)",
    ]
    return lines


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the supervisor dies."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - not Linux
        pass


def start_service(name: str, config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", f"services.{name}", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        preexec_fn=_die_with_parent,
    )
    assert proc.stdout is not None
    threading.Thread(target=_pipe_lines, args=(name, proc.stdout), daemon=True).start()
    return proc


def health_urls(settings: Settings) -> dict[str, str]:
    host = settings.services.host
    return {
        name: f"http://{host}:{getattr(settings.services, name).health_port}/health"
        for name in SERVICES
    }


def wait_healthy(urls: dict[str, str], timeout_s: float, stopped: Callable[[], bool]) -> bool:
    pending = dict(urls)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline and not stopped():
        for name, url in list(pending.items()):
            try:
                with urllib.request.urlopen(url, timeout=0.5) as resp:
                    if resp.status == 200:
                        del pending[name]
            except OSError:
                pass
        time.sleep(0.2)
    return not pending


def stop_all(procs: dict[str, subprocess.Popen[bytes]], timeout_s: float) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            emit("stack", f"{name} did not stop in {timeout_s:.0f}s: killing it")
            proc.kill()
            proc.wait()
        emit("stack", f"{name} exited with code {proc.returncode}")


def run_stack(config_arg: str | None) -> int:
    from mev_common.settings import resolve_config_path

    config = resolve_config_path(config_arg)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            emit("stack", "second signal: stopping harder")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    nats: EmbeddedNats | None = None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    extras: list[Callable[[], None]] = []
    exit_code = 0
    try:
        # the devnet first: its deploy is the longest path to a first trade (seconds of CPU on
        # a busy host); NATS and the services start while it runs, and wait for it
        new_devnet = forget_stale_deployment(settings)
        devnet_up = start_devnet(settings, config, new_devnet, extras)
        auth = Path(settings.nats.credentials_dir) if settings.nats.credentials_dir else None
        if settings.nats.embedded:
            host, port = settings.nats.url.rsplit("//", 1)[1].rsplit(":", 1)
            store = Path(settings.nats.store_dir)
            nats = EmbeddedNats(
                port=int(port),
                store_dir=store,
                host=host,
                log_file=store / "nats-server.log",
                auth_dir=auth,
            )
            nats.start()
            users = f", users and credentials in {auth}" if auth else ""
            emit("nats", f"nats-server with JetStream on {nats.url}, store {store}{users}")
        if auth is not None and asyncio.run(_declare(settings)) != 0:
            raise SystemExit("mev-bot run: cannot declare streams as operator (see above)")
        # the services start while the devnet comes up (they wait for its deployment file):
        # their start-up, seconds of imports on a busy host, overlaps the deploy
        env = dict(os.environ, PYTHONUNBUFFERED="1", MEV_CONFIG=str(config))
        started = time.monotonic()
        for name in SERVICES:
            procs[name] = start_service(name, config, dict(env, MEV_INSTANCE=f"{name}-0"))
        start_flow(settings, config, extras)
        if devnet_up is not None and devnet_up.wait() != 0:
            raise SystemExit("mev-bot run: `mev-bot devnet up` failed (see above)")
        if wait_healthy(health_urls(settings), HEALTHY_WITHIN_S, stop.is_set):
            emit(
                "stack",
                f"all services healthy after {time.monotonic() - started:.1f}s; "
                "Ctrl-C stops everything",
            )
            for name, url in health_urls(settings).items():
                emit("stack", f"  {name:<8} {url}")
        elif not stop.is_set():
            emit(
                "stack",
                f"not every service became healthy within {HEALTHY_WITHIN_S:.0f}s (see logs above)",
            )
        reporter = threading.Thread(
            target=_report_status, args=(settings, stop), name="status", daemon=True
        )
        reporter.start()
        while not stop.is_set():
            for name, proc in procs.items():
                if proc.poll() is None:
                    continue
                if proc.returncode == 0:  # drained on request (`mev-bot --shutdown-graceful`)
                    emit("stack", f"{name} shut down gracefully: stopping the rest")
                else:
                    for line in crash_advice(name, proc.returncode, config):
                        emit("stack", line)
                    exit_code = 1
                stop.set()
                break
            stop.wait(0.5)
    finally:
        final = _status_line(settings)
        emit("stack", "stopping services")
        stop_all(procs, settings.services.shutdown_timeout_s + 2)
        for undo in reversed(extras):
            undo()
        if nats is not None:
            nats.stop()
            emit("nats", "stopped")
        if final:
            emit("stack", f"summary: {final}")
    return exit_code


STATUS_EVERY_S = 5.0


async def _declare(settings: Settings) -> int:
    # imported here: nats (aiohttp) costs the supervisor ~0.5 s of CPU before it starts anything
    from mev_ops.nats_auth_cmds import declare

    return await declare(settings)


STATUS_WINDOW_S = 60.0  # the status line's latencies: the last minute's, not since start


def _status_line(settings: Settings, history: deque[tuple[float, Any]] | None = None) -> str | None:
    """One line from every service's /metrics (absent services count as zero); with
    `history` (earlier scrapes), latencies over the last STATUS_WINDOW_S."""
    from mev_ops.pipeline_status import parse_metrics, pipeline_status

    samples = {}
    host = settings.services.host
    for name in SERVICES:
        port = getattr(settings.services, name).metrics_port
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=1) as resp:
                samples[name] = parse_metrics(resp.read().decode())
        except OSError:
            continue
    if not samples:
        return None
    if history is None:
        return pipeline_status(samples).line()
    now = time.monotonic()
    history.append((now, samples))
    while len(history) > 1 and now - history[1][0] >= STATUS_WINDOW_S:
        history.popleft()  # the oldest kept is the newest at least a window old
    then, before = history[0]
    if now - then < STATUS_WINDOW_S:
        return pipeline_status(samples).line()  # the first minute: since start
    return pipeline_status(samples, before, now - then).line()


def _report_status(settings: Settings, stop: threading.Event) -> None:
    history: deque[tuple[float, Any]] = deque()
    while not stop.wait(STATUS_EVERY_S):
        line = _status_line(settings, history)
        if line:
            emit("status", line)


def forget_stale_deployment(settings: Settings) -> bool:
    """True if `start_devnet` will bring a new devnet up. Its chain is new: the last one's
    deployment file goes now, before the services start, so none reads the old addresses
    (they wait until `devnet up` writes the new file)."""
    if settings.devnet is None:
        return False
    from mev_ops.devnet.anvil import find_running
    from mev_ops.devnet.commands import data_dir, deployment_path

    if find_running(data_dir(settings)) is not None:
        return False
    deployment_path(settings).unlink(missing_ok=True)
    return True


def _devnet_cli(config: Path) -> list[str]:
    return [sys.executable, "-m", "mev_ops.cli", "--config", str(config), "devnet"]


def start_devnet(
    settings: Settings, config: Path, new_devnet: bool, undo: list[Callable[[], None]]
) -> subprocess.Popen[bytes] | None:
    """With a `devnet:` section and `new_devnet`: start `mev-bot devnet up` (its output shown
    as it comes) and return it; the caller waits for it. Adds to `undo` what takes the devnet
    down again (the caller runs it even if anything later fails)."""
    if settings.devnet is None:
        return None
    if not new_devnet:
        emit("devnet", "a devnet is already running: using it (stop it with `mev-bot devnet down`)")
        return None
    cli = _devnet_cli(config)
    up = subprocess.Popen(
        [*cli, "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
    )
    assert up.stdout is not None
    threading.Thread(target=_pipe_lines, args=("devnet", up.stdout), daemon=True).start()

    def down() -> None:
        if up.poll() is None:  # stopped while deploying
            stop_all({"devnet up": up}, 5.0)
        _run_logged("devnet", [*cli, "down"])

    undo.append(down)
    return up


def flow_command(settings: Settings, config: Path) -> list[str]:
    """The swap flow `mev-bot run` starts: while the devnet deploys, and below the bot's
    services in CPU priority once it sends (`devnet.nice`, mev_ops.devnet.priority)."""
    assert settings.devnet is not None
    nice = ["--nice", str(settings.devnet.nice)]
    return [*_devnet_cli(config), "flow", "--wait", str(FLOW_WAITS_S), *nice]


def start_flow(settings: Settings, config: Path, undo: list[Callable[[], None]]) -> None:
    """With a `devnet:` section: start the swap flow (it waits for the deployment). Adds its
    stop to `undo`, which runs in reverse: the flow stops before its chain goes down."""
    if settings.devnet is None:
        return
    flow = subprocess.Popen(
        flow_command(settings, config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,  # a session of its own: the flow lowers it (--nice)
    )
    assert flow.stdout is not None
    threading.Thread(target=_pipe_lines, args=("flow", flow.stdout), daemon=True).start()

    def stop_flow() -> None:
        if flow.poll() is None:
            flow.send_signal(signal.SIGINT)  # the flow's own Ctrl-C path prints its summary
            with contextlib.suppress(subprocess.TimeoutExpired):
                flow.wait(timeout=5.0)
        stop_all({"flow": flow}, 5.0)

    undo.append(stop_flow)


def _run_logged(source: str, cmd: list[str]) -> int:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        emit(source, line)
    return proc.returncode
