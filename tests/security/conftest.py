"""Shared fixtures of the bus-permission attacks: a real nats-server with the shipped users and
permissions (mev_common.nats_auth), a fresh one per test (the attacks count exact messages)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[tuple[EmbeddedNats, Path]]:
    """The server and its credentials directory (one .creds file per user)."""
    server = start_embedded_nats(store_dir=tmp_path / "nats", auth_dir=tmp_path / "auth")
    try:
        yield server, tmp_path / "auth"
    finally:
        server.cleanup()
