"""The devnet bot key file: created once with mode 0600, reused, and checked."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from mev_ops.devnet.keys import KeyFileError, load_or_create_key


def test_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys/devnet.key"
    first = load_or_create_key(path)
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path).address == first.address


def test_a_file_without_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "devnet.key"
    path.write_text("not a key\n")
    with pytest.raises(KeyFileError):
        load_or_create_key(path)
    assert path.read_text() == "not a key\n"
