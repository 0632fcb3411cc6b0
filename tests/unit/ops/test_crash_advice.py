"""A crashed `mev-bot run` says which service, where its log is, its last error and what to
type next (issue 15: the operator had to find out by hand)."""

from __future__ import annotations

import io
from pathlib import Path

from mev_ops import stack


def test_advice_names_the_service_its_last_error_and_the_commands() -> None:
    log = io.BytesIO(
        b'{"ts": 1, "level": "INFO", "msg": "service started"}\n'
        b'{"ts": 2, "level": "ERROR", "msg": "main loop ended unexpectedly", "error": "boom"}\n'
    )
    stack._pipe_lines("ingest", log)
    lines = stack.crash_advice("ingest", 1, Path("config/devnet.yaml"))
    assert lines[0] == "ingest exited unexpectedly with code 1: the stack is stopping"
    assert lines[1].startswith("  its log: the `ingest   |` lines above; last error: ")
    assert lines[1].endswith("ERROR   main loop ended unexpectedly  error=boom")
    assert "`mev-bot run --config config/devnet.yaml` again" in lines[2]
    assert "`mev-bot --config config/devnet.yaml --adjust-rpc-rate 1` (or `--resume`)" in lines[3]
