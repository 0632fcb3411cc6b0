"""`mev-bot --dry-run --duration 2s`: the whole stack starts with submit in dry-run mode and a
separate ledger, stops by itself after the duration (services drain, exit 0), and prints the
ledger summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NatsEndpoint
from tests.support.stack import REPO, SERVICES, write_config

pytestmark = pytest.mark.timeout(120)


def test_dry_run_runs_for_the_duration_then_stops_cleanly_and_summarizes(
    nats_server: NatsEndpoint, tmp_path: Path
) -> None:
    config = write_config(tmp_path, nats_server.url, 4545)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mev-bot"), "--config", str(config),
         "--dry-run", "--duration", "2s"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=100,
        env={k: v for k, v in os.environ.items() if not k.startswith("MEV_")},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (
        f"mev-bot: dry run for 2s once healthy; ledger {tmp_path / 'mev-bot.dry-run.db'}"
    )
    exits = sorted(line.split("|", 1)[1].strip() for line in lines if "exited with code" in line)
    assert exits == sorted(f"{name} exited with code 0" for name in SERVICES)
    # no chain and no devnet here: submit never got its key, so nothing was booked
    assert lines[-1] == "dry run: no ledger written (submit booked nothing)"
