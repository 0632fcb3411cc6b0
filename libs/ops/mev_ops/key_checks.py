"""`mev-bot --validate-config`'s checks of the key files on this machine (config_check.py runs
them): each key private to the bot's user (0600), no two nonce lanes on one key, and the
summary's line per key file. Only addresses are ever shown, never a key or a password."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from mev_common.settings import KeySettings, Settings

if TYPE_CHECKING:
    from mev_ops.config_check import Findings


def check_secret_files(settings: Settings, found: Findings, key_required: bool = False) -> None:
    """The signing key (and its password file) must be private to the bot's user: mode 0600
    or stricter. A missing key is only a warning (configs are validated before keys are
    mounted: the runbook restores config first), unless `key_required` (strict --verbose)."""
    key = settings.keys
    lanes = [(p, f"keys.lanes (lane {i} of {key.lanes})") for i, p in enumerate(key.lane_paths())]
    lanes[0] = (key.path, "keys.path")
    for key_path, label in (*lanes, (key.password_file, "keys.password_file")):
        if key_path is None:
            continue
        state = _file_mode_problem(Path(key_path))
        if state == "missing" and key_required:
            found.unreachable.append(
                f"{label}: {key_path} does not exist; the bot cannot sign "
                "(create or mount it; --offline checks the file alone)"
            )
        elif state == "missing":
            found.warnings.append(f"{label} {key_path} does not exist (needed to sign bundles)")
        elif state:
            found.problems.append(f"{label}: got {key_path} {state}")
    if key.password_env and key.password_env not in os.environ:
        found.warnings.append(f"keys.password_env: {key.password_env} is not set in this shell")


def check_lane_keys_distinct(settings: Settings, found: Findings) -> None:
    """Two nonce lanes on one key share one nonce sequence: submit refuses to start (keys.py
    load_lane_signers), so say so here first. Compared by address (a hex key's, a keystore's
    own `address` field, else the keystore decrypted with the configured password); a
    keystore that cannot be told is a warning saying so. Only addresses are ever shown."""
    keys = settings.keys
    if keys.lanes < 2:
        return
    seen: dict[str, tuple[int, str]] = {}
    for lane, path in enumerate(keys.lane_paths()):
        address, unknown = _key_identity(Path(path), keys)
        if unknown:
            which = "keys.path (the hot key)" if lane == 0 else f"lane {lane}'s key file"
            found.warnings.append(
                f"keys.lanes: {which} {path} was not compared with the other lanes' keys "
                f"(two lanes on one key make submit refuse to start): it is a keystore "
                f"without an `address` field and {unknown}; add its address to the file "
                '(`"address": "<40 hex>"`, as geth and eth_account write it) or make its '
                "password available here (keys.password_env set, or keys.password_file)"
            )
        if address is None:
            continue
        first = seen.setdefault(address.lower(), (lane, path))
        if first[0] == lane:
            continue
        which = "keys.path, the hot key" if first[0] == 0 else f"lane {first[0]}'s key"
        found.problems.append(
            f"keys.lanes: lane {lane}'s key file {path} holds the same key as {first[1]} "
            f"({which}), address {address}: two lanes on one key share one nonce sequence "
            f"and submit refuses to start; write a new key to {path} (openssl rand -hex 32, "
            "chmod 600), fund it and name it a trader (python -m mev_ops.rotate "
            "--traders-only), or lower keys.lanes"
        )


def _key_identity(path: Path, keys: KeySettings) -> tuple[str | None, str | None]:
    """(the address a key file signs as, None) or (None, why it cannot be told). A keystore
    without an `address` field is decrypted only when a password is configured (slow: its
    KDF); a missing or unreadable file is (None, None): check_secret_files reports it."""
    from services.submit.keys import KeyLoadError, key_address, load_signer

    if not path.is_file():
        return None, None
    address = key_address(path)
    if address is not None or not path.read_text(errors="replace").lstrip().startswith("{"):
        return address, None
    if not (keys.password_env or keys.password_file):
        return None, "no keystore password is configured (keys.password_env, keys.password_file)"
    try:
        return load_signer(keys.model_copy(update={"path": str(path)})).address, None
    except KeyLoadError as exc:  # names the file and the problem, never a secret
        return None, f"it could not be decrypted here: {exc}"


def _file_mode_problem(path: Path) -> str | None:
    """None if the file is private, "missing", or the rest of an error line."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"(cannot stat: {exc.strerror}); expected a readable file"
    if not stat.S_ISREG(info.st_mode):
        return "(not a regular file); expected a key file"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return (
            f"with mode {mode:04o}; expected 0600 or stricter (other users could read the key: "
            f"chmod 600 {path})"
        )
    return None


def key_file_state(path: str) -> str:
    """For the summary: 'present, mode 0600, address 0x...' (the address the key signs as,
    never the key) or 'missing'."""
    from services.submit.keys import key_address

    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except OSError:
        return "missing"
    address = key_address(Path(path))
    return f"present, mode {mode:04o}" + (f", address {address}" if address else "")
