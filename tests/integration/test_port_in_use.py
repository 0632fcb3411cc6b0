"""A service whose health or metrics port is taken refuses to start, naming the key and the
fix, before it connects to anything (before: uvicorn exited 3 after the service had started
consuming; a taken metrics port was a traceback)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from tests.support.stack import run_to_exit, write_config


@pytest.mark.parametrize("key", ["health_port", "metrics_port"])
def test_a_taken_port_is_a_refusal_that_names_the_key(tmp_path: Path, key: str) -> None:
    config = write_config(tmp_path, "nats://127.0.0.1:1", 31337)  # never reached
    port = yaml.safe_load(config.read_text())["services"]["ingest"][key]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", port))
        held.listen(1)
        done = run_to_exit("ingest", config)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == (
        f"ingest: refusing to start: services.ingest.{key} {port} on 127.0.0.1 cannot be bound"
        f" (Address already in use): stop what holds it (`ss -ltnp 'sport = :{port}'`)"
        " or set a free port\n"
    )
