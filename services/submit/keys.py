"""The bot's signing key: loaded once at start, refused loudly if unsafe, never printed.

Two formats: 64 hex characters (what `openssl rand -hex 32` writes, optional 0x, whitespace
ignored) or an encrypted keystore JSON whose password comes from the environment variable
`keys.password_env` or the file `keys.password_file`. The file must be mode 0600 (no group or
other bit): a key readable by other users is a key someone else may already hold.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from mev_common.settings import KeySettings

from services.submit.signing import Eip1559Signer

_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class KeyLoadError(RuntimeError):
    """The key cannot be used; the message is one line naming the file and the problem."""


class Signer:
    """The loaded key. Only the address is ever shown; repr and str hide the secret."""

    __slots__ = ("_account", "_fast", "address")

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self._fast = Eip1559Signer(bytes(account.key))
        self.address: str = account.address

    def sign(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        """Sign a transaction dict; return (raw bytes, 0x tx hash). Submit's own type-2 shape
        is signed by `signing.Eip1559Signer` (eth-account's bytes, ~10x less Python)."""
        fast = self._fast.sign(tx)
        if fast is not None:
            return fast[0], "0x" + fast[1].hex()
        signed = self._account.sign_transaction(tx)
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle the secret into a file or a queue
        raise TypeError("a Signer cannot be serialized")


def load_signer(cfg: KeySettings, environ: dict[str, str] | None = None) -> Signer:
    """Read and check the key file; raise KeyLoadError with a one-line reason."""
    env = os.environ if environ is None else environ
    path = Path(cfg.path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyLoadError(f"key file {path} not found") from None
    except OSError as exc:
        raise KeyLoadError(f"key file {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyLoadError(f"key file {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyLoadError(
            f"key file {path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})"
        )
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        raise KeyLoadError(f"key file {path} is not readable text") from None
    if _HEX_KEY.match(text):
        return Signer(Account.from_key(bytes.fromhex(text.removeprefix("0x"))))
    if text.startswith("{"):
        return Signer(Account.from_key(_decrypt_keystore(path, text, cfg, env)))
    raise KeyLoadError(
        f"key file {path} is malformed: expected 64 hex characters or a keystore JSON"
    )


def load_lane_signers(cfg: KeySettings, environ: dict[str, str] | None = None) -> list[Signer]:
    """Every nonce lane's key (keys.lanes; lane 0 is keys.path), each checked like keys.path.
    Two lanes on one address would share a nonce sequence: refused."""
    signers = [load_signer(cfg.model_copy(update={"path": p}), environ) for p in cfg.lane_paths()]
    seen: dict[str, int] = {}
    for lane, signer in enumerate(signers):
        first = seen.setdefault(signer.address.lower(), lane)
        if first != lane:
            raise KeyLoadError(
                f"key file {cfg.lane_path(lane)} holds lane {first}'s key: each of keys.lanes "
                "needs its own key (its own nonce sequence)"
            )
    return signers


def key_address(path: Path) -> str | None:
    """The address a key file holds, for an operator's summary (never the key): derived from a
    hex key, a keystore's own `address` field (no password needed); None if neither."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        if _HEX_KEY.match(text):
            return str(Account.from_key(bytes.fromhex(text.removeprefix("0x"))).address)
        address = json.loads(text).get("address") if text.startswith("{") else None
    except (ValueError, AttributeError):  # a key out of range, a JSON that is no object
        return None
    if not isinstance(address, str) or not re.fullmatch(r"(0x)?[0-9a-fA-F]{40}", address):
        return None
    return str(to_checksum_address("0x" + address.removeprefix("0x")))


def _decrypt_keystore(path: Path, text: str, cfg: KeySettings, env: Mapping[str, str]) -> bytes:
    try:
        keystore = json.loads(text)
    except ValueError:
        raise KeyLoadError(f"key file {path} is malformed: not valid keystore JSON") from None
    if not isinstance(keystore, dict) or "crypto" not in {k.lower() for k in keystore}:
        raise KeyLoadError(f"key file {path} is malformed: JSON without a keystore 'crypto'")
    password = _password(path, cfg, env)
    try:
        return bytes(Account.decrypt(keystore, password))
    except ValueError:
        raise KeyLoadError(f"key file {path}: wrong keystore password") from None
    except Exception as exc:  # eth-keyfile raises assorted types on a damaged keystore
        raise KeyLoadError(
            f"key file {path} is malformed: keystore cannot be decrypted ({type(exc).__name__})"
        ) from None


def _password(path: Path, cfg: KeySettings, env: Mapping[str, str]) -> str:
    if cfg.password_env:
        value = env.get(cfg.password_env)
        if value is None:
            raise KeyLoadError(
                f"key file {path} is a keystore but ${cfg.password_env} (keys.password_env) "
                "is not set"
            )
        return value
    if cfg.password_file:
        pw_path = Path(cfg.password_file)
        try:
            pw_mode = stat.S_IMODE(pw_path.stat().st_mode)
        except OSError:
            raise KeyLoadError(f"keys.password_file {pw_path} not found") from None
        if pw_mode & 0o077:
            raise KeyLoadError(
                f"keys.password_file {pw_path} has mode {pw_mode:04o}; it must be 0600"
            )
        return pw_path.read_text().rstrip("\r\n")
    raise KeyLoadError(
        f"key file {path} is a keystore: set keys.password_env or keys.password_file"
    )
