"""Replacing the nonce lane keys (keys.lanes > 1): `python -m mev_ops.rotate --lanes`.

A lane key may only `execute`, but a stolen one still spends its gas money and can race our
trades, so it is rotated like the hot key (docs/RUNBOOK.md, "Key rotation"):
  1. a new key for every lane i >= 1, written 0600 to `<lane file>.next` (kept across a failed
     run, so a rerun resumes with the same new keys); all loaded before anything is sent;
  2. refused, nothing sent, while any old lane key has an unsettled tx (its pending nonce above
     its mined one): a trade in flight from a key no longer a trader reverts NotTrader when
     mined. Stop submit first (the emergency stop, as the hot key's rotation does);
  3. per lane, from the owner: `setTrader(new, true)`; the old lane key's ETH, less this
     transfer's fee, to the new one (its gas money); `setTrader(old, false)`; each skipped when
     already done;
  4. the old lane files to the archive (0700 directory, files 0600; gpg-encrypted when
     MEV_BACKUP_PASSPHRASE is set, like scripts/rotate-keys.sh), then `.next` becomes the file.
Only addresses are printed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from eth_utils import to_checksum_address
from mev_common.executor import encode_set_trader
from mev_common.settings import KeySettings

from mev_ops.rotate import Chain, Party, RotationError, load_party, say

TRANSFER_GAS = 21_000


def next_lane_parties(keys: KeySettings) -> list[Party]:
    """Step 1: each lane's new key (`<lane file>.next`, created 0600 if absent), loaded."""
    from mev_ops.devnet.keys import KeyFileError, load_or_create_key

    parties = []
    for lane in range(1, keys.lanes):
        path = next_path(keys, lane)
        try:
            load_or_create_key(path)
        except KeyFileError as exc:
            raise RotationError(f"{exc}: remove it to make a new one") from None
        parties.append(load_party(path, keys))
    return parties


def next_path(keys: KeySettings, lane: int) -> Path:
    return Path(keys.lane_path(lane) + ".next")


def unsettled(chain: Chain, address: str) -> int:
    """Txs this key sent that are not mined yet (pending nonce less mined nonce)."""
    account = to_checksum_address(address)
    pending = chain.w3.eth.get_transaction_count(account, "pending")
    return int(pending) - int(chain.w3.eth.get_transaction_count(account, "latest"))


def require_settled(chain: Chain, olds: Sequence[Party]) -> None:
    """Step 2: no old lane key may have a tx in flight (checked before anything is sent)."""
    for lane, old in enumerate(olds, start=1):
        waiting = unsettled(chain, old.address)
        if waiting:
            raise RotationError(
                f"lane {lane} key {old.address} has {waiting} unsettled tx(s): rotated now, a "
                "trade in flight would revert NotTrader; nothing was sent: stop sends "
                "(mev-bot --emergency-stop), wait until `mev-bot status` shows 0 in flight on "
                "that lane, rerun"
            )


def rotate_lanes(
    chain: Chain, executor: str, owner: Party, olds: Sequence[Party], news: Sequence[Party]
) -> None:
    """Steps 2 and 3 of the module docstring; idempotent."""
    executor = to_checksum_address(executor)
    actual = chain.address_of(executor, "owner")
    if olds and actual != owner.address:
        raise RotationError(
            f"the executor's owner is {actual}, not {owner.address}: only the owner names traders"
        )
    require_settled(chain, olds)
    for lane, (old, new) in enumerate(zip(olds, news, strict=True), start=1):
        if not chain.is_trader(executor, new.address):
            what = f"setTrader(lane {lane} new key {new.address}, true)"
            chain.send(owner, executor, encode_set_trader(new.address, True), what)
        max_fee, _ = chain.fees()
        spare = chain.eth_balance(old.address) - TRANSFER_GAS * max_fee
        if spare > 0:
            what = f"move {spare} wei from lane {lane} key {old.address} to its new key"
            chain.send(old, new.address, b"", what, spare, TRANSFER_GAS)
        if chain.is_trader(executor, old.address):
            what = f"setTrader(lane {lane} old key {old.address}, false)"
            chain.send(owner, executor, encode_set_trader(old.address, False), what)
        if not chain.is_trader(executor, new.address) or chain.is_trader(executor, old.address):
            raise RotationError(f"lane {lane}: the new key is not the only trader of the two")
        say(f"lane {lane}: {old.address} -> {new.address}")


def swap_lane_files(keys: KeySettings, archive: Path) -> None:
    """Step 4: each old lane file archived, its `.next` in its place."""
    archive.mkdir(mode=0o700, parents=True, exist_ok=True)
    archive.chmod(0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for lane in range(1, keys.lanes):
        path, new = Path(keys.lane_path(lane)), next_path(keys, lane)
        if not new.exists():
            continue
        if path.exists():  # else archived by a run that stopped before the replace below
            kept = archive_key(path, archive / f"{path.name}.{stamp}")
            say(f"lane {lane}: old key archived at {kept}")
        os.replace(new, path)
        say(f"lane {lane}: new key at {path}")


def archive_key(path: Path, dest: Path) -> Path:
    """Move the key file to `dest` (0600), gpg-encrypted when MEV_BACKUP_PASSPHRASE is set."""
    passphrase = os.environ.get("MEV_BACKUP_PASSPHRASE")
    if not passphrase:
        os.replace(path, dest)
        dest.chmod(0o600)
        return dest
    dest = dest.with_name(dest.name + ".gpg")
    subprocess.run(
        ["gpg", "--batch", "--yes", "--quiet", "--pinentry-mode", "loopback",
         "--passphrase-fd", "0", "--symmetric", "--cipher-algo", "AES256",
         "--output", str(dest), str(path)],
        input=passphrase, text=True, check=True, capture_output=True,
    )  # fmt: skip
    dest.chmod(0o600)
    path.unlink()
    return dest
