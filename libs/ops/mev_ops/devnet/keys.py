"""The devnet bot key: 64 hex characters in a 0600 file, created once, never printed."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class KeyFileError(RuntimeError):
    """The key file exists but does not hold a 32-byte hex key."""


def load_or_create_key(path: Path) -> LocalAccount:
    """Read the key at `path`, creating it (mode 0600, like `openssl rand -hex 32`) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key another process just wrote; the mode applies at creation.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    text = path.read_text().strip()
    if not _HEX_KEY.match(text):
        raise KeyFileError(f"{path} does not hold 64 hex characters")
    return Account.from_key(bytes.fromhex(text.removeprefix("0x")))
