"""`make run` as a user runs it, measured: `mev-bot run` on config/devnet.yaml (the devnet, its
flow, NATS and the four services) with private ports and a private data directory, so it can
run beside another stack. Prints the supervisor's own status lines as they come, then, for the
last STATUS_WINDOW_S before the end, what the status line's two latencies are made of:
detect's seen -> opportunity, simulate's seen -> bundle and submit's seen -> signed tx by
trigger (block, pending), and each service's hops, each as
p50/p95 (n) from the services' histograms (the same buckets the status line interpolates), and
again as exact nearest-rank p50/p95 (n) on the window's own observations (the services write
each one: MEV_LATENCY_SAMPLES_DIR), since a p95 over a dozen bundles interpolated in a 20-50 ms
bucket says little.

    .venv/bin/python -m bench.makerun --seconds 180
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

import yaml
from mev_common.metrics import SAMPLES_ENV
from mev_ops.pipeline_status import Samples, histogram_quantile, parse_metrics, since
from mev_ops.stack import STATUS_WINDOW_S

from bench.stats import exact

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("ingest", "detect", "simulate", "submit")


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def private_config(base: Path, tmp: Path) -> dict[str, Any]:
    """`base` with every port free and every data path under `tmp`."""
    cfg: dict[str, Any] = yaml.safe_load(base.read_text())
    ports = free_ports(2 * len(SERVICES) + 2)
    node, nats = ports[-2], ports[-1]
    endpoint = cfg["chain"]["rpc_endpoints"][0]
    endpoint["url"] = f"http://127.0.0.1:{node}"
    endpoint["ws_url"] = f"ws://127.0.0.1:{node}"
    cfg["devnet"]["port"] = node
    cfg["nats"].update(url=f"nats://127.0.0.1:{nats}", store_dir=str(tmp / "nats"))
    cfg["nats"]["credentials_dir"] = str(tmp / "nats-auth")
    for i, name in enumerate(SERVICES):
        cfg["services"][name] = {"health_port": ports[2 * i], "metrics_port": ports[2 * i + 1]}
    cfg["contracts"]["deployment_file"] = str(tmp / "devnet" / "deployment.json")
    cfg["database"]["path"] = str(tmp / "mev-bot.db")
    cfg["keys"]["path"] = str(tmp / "keys" / "devnet.key")
    return cfg


def scrape(cfg: dict[str, Any]) -> dict[str, Samples]:
    out: dict[str, Samples] = {}
    for name in SERVICES:
        port = cfg["services"][name]["metrics_port"]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                out[name] = parse_metrics(resp.read().decode())
        except OSError:
            continue
    return out


def split(samples: Samples, name: str, label: str) -> dict[str, str]:
    """p50/p95 (n) of histogram `name` for each value of `label`."""
    values = sorted({lbl[label] for lbl, _ in samples.get(f"{name}_count", []) if label in lbl})
    out = {}
    for value in values:
        only = {
            k: [(lbl, v) for lbl, v in rows if lbl.get(label) == value]
            for k, rows in samples.items()
            if k.startswith(name)
        }
        n = sum(v for _, v in only.get(f"{name}_count", []))
        p50, p95 = (histogram_quantile(only, name, q) for q in (0.5, 0.95))
        if n and p50 is not None and p95 is not None:
            out[value] = f"{p50 * 1000:.2f} / {p95 * 1000:.2f} ms (n={n:.0f})"
    return out


def sample_offsets(directory: Path) -> dict[Path, int]:
    """How far each service's samples file has been written (where a window starts)."""
    return {path: path.stat().st_size for path in directory.glob("*.samples")}


def exact_since(offsets: dict[Path, int], directory: Path) -> dict[tuple[str, str], list[float]]:
    """Every observation written after `offsets` ("name labels seconds" lines), by (name,
    labels); a file that started later is read whole."""
    out: dict[tuple[str, str], list[float]] = {}
    for path in sorted(directory.glob("*.samples")):
        with path.open("rb") as f:
            f.seek(offsets.get(path, 0))
            for raw in f.read().decode("utf-8", "replace").splitlines():
                parts = raw.split()
                if len(parts) == 3:  # a line cut short by the read is left out
                    out.setdefault((parts[0], parts[1]), []).append(float(parts[2]) * 1000)
    return out


def exact_lines(samples: dict[tuple[str, str], list[float]]) -> list[str]:
    """One line per latency and hop: nearest-rank p50 / p95 on the samples, with n."""
    names = {
        "mev_bot_detection_latency_seconds": "detect seen -> opportunity, trigger=",
        "mev_bot_simulation_latency_seconds": "simulate seen -> bundle, trigger=",
        "mev_bot_submission_latency_seconds": "submit seen -> signed tx, trigger=",
        "mev_bot_hop_latency_seconds": "hop ",
    }
    lines = []
    for (name, labels), values in sorted(samples.items()):
        if name in names and values:
            s = exact(values)
            lines.append(f"  {names[name]}{labels}: {s.p50:.2f} / {s.p95:.2f} ms (n={s.samples})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--config", type=Path, default=REPO / "config" / "devnet.yaml")
    parser.add_argument("--devnet-nice", type=int, help="devnet.nice for this run (A/B)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="makerun-"))
    cfg = private_config(args.config, tmp)
    if args.devnet_nice is not None:
        cfg["devnet"]["nice"] = args.devnet_nice
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    samples_dir = tmp / "samples"
    samples_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mev_ops.cli", "--config", str(config), "run"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1", **{SAMPLES_ENV: str(samples_dir)}),
    )
    log = (tmp / "run.log").open("wb")

    def tee() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            log.write(raw)
            line = raw.decode("utf-8", "replace")
            if line.startswith(("status", "stack")):
                print(f"{time.strftime('%H:%M:%S')} {line.rstrip()}", flush=True)

    threading.Thread(target=tee, daemon=True).start()
    # each scrape with where the samples files were at that moment
    history: deque[tuple[float, dict[str, Samples], dict[Path, int]]] = deque()
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(5.0)
            history.append((time.monotonic(), scrape(cfg), sample_offsets(samples_dir)))
            while len(history) > 1 and history[-1][0] - history[1][0] >= STATUS_WINDOW_S:
                history.popleft()
        if len(history) >= 2:
            (then, before, offsets), (now, last, _) = history[0], history[-1]
            window = {k: since(v, before.get(k, {})) for k, v in last.items()}
            print(f"last {now - then:.0f} s; load average {os.getloadavg()}")
            detect = window.get("detect", {})
            for k, v in split(detect, "mev_bot_detection_latency_seconds", "trigger").items():
                print(f"  detect seen -> opportunity, trigger={k}: {v}")
            for service in SERVICES:
                hops = split(window.get(service, {}), "mev_bot_hop_latency_seconds", "hop")
                for k, v in hops.items():
                    print(f"  {service} hop {k}: {v}")
            sim = window.get("simulate", {})
            for k, v in split(sim, "mev_bot_simulation_latency_seconds", "trigger").items():
                print(f"  simulate seen -> bundle, trigger={k}: {v}")
            results: dict[str, int] = {}  # why opportunities did or did not become bundles
            for lbl, count in sim.get("mev_bot_simulations_total", []):
                key = f"{lbl.get('strategy')} {lbl.get('result')}"
                results[key] = results.get(key, 0) + int(count)
            print(f"  simulate results since start: {dict(sorted(results.items()))}")
            sub = window.get("submit", {})
            for k, v in split(sub, "mev_bot_submission_latency_seconds", "trigger").items():
                print(f"  submit seen -> signed tx, trigger={k}: {v}")
            print("the same window on exact samples (nearest rank):")
            print("\n".join(exact_lines(exact_since(offsets, samples_dir))))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(f"run log: {tmp / 'run.log'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
