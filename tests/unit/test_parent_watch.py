"""simulate's py-evm pool worker ends with simulate, however simulate ended (SIGKILL too):
before, a killed simulate left the worker and multiprocessing's resource tracker running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PARENT = """
import multiprocessing, os
from concurrent.futures import ProcessPoolExecutor
from services.simulate.reference_proc import _init_worker
pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                           initializer=_init_worker)
print(pool.submit(os.getpid).result(), flush=True)
os.kill(os.getpid(), 9)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for a reaper that may not come)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_pool_worker_exits_when_simulate_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with out.open("w") as f:  # a file, not a pipe: the worker holds the parent's stdout
        parent = subprocess.run([sys.executable, "-c", PARENT], stdout=f, timeout=60)
    assert parent.returncode == -signal.SIGKILL
    worker = int(out.read_text().strip())
    try:
        deadline = time.monotonic() + 10.0
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(worker), "the pool worker outlived its killed parent"
    finally:
        if _running(worker):
            os.kill(worker, signal.SIGKILL)
