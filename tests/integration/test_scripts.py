"""scripts/*.sh on temporary directories: backup -> damage -> restore gives an intact ledger
with the same rows; a damaged backup is refused; disaster recovery restores config, key and
ledger; key rotation leaves a 0600 key and an archive, and rotates nothing when the emergency
stop is not acknowledged."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from mev_ops.nats_server import free_port

from tests.support.stack import REPO, write_config

SCRIPTS = REPO / "scripts"
STAMP = "20261125"
PASSPHRASE = "test-only-passphrase"


def run(script: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / script), *args],
        cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, "MEV_BACKUP_DATE": STAMP, **env},
    )  # fmt: skip


def make_ledger(path: Path, bundles: int) -> dict[str, int]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(
        "CREATE TABLE bundles (id TEXT PRIMARY KEY, strategy TEXT, profit TEXT);"
        "CREATE TABLE outcomes (bundle_id TEXT PRIMARY KEY, status TEXT, payload TEXT);"
    )
    with db:
        for i in range(bundles):
            db.execute("INSERT INTO bundles VALUES (?, 'backrun', ?)", (f"b{i}", str(i * 10**15)))
            if i % 3:
                db.execute("INSERT INTO outcomes VALUES (?, 'included', ?)", (f"b{i}", "x" * 200))
    db.close()
    return {"bundles": bundles, "outcomes": sum(1 for i in range(bundles) if i % 3)}


def restored_rows(out: str) -> dict[str, int]:
    rows = {}
    for line in out.splitlines():
        if line.startswith("restore: rows "):
            table, count = line.removeprefix("restore: rows ").split()
            rows[table] = int(count)
    return rows


def damage(path: Path) -> None:
    """Overwrite everything after the first page: tables become unreadable garbage."""
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xa5" * (len(data) - 4096)
    path.write_bytes(bytes(data))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config/production.yaml").write_text("chain: {chain_id: 999}\n")
    (tmp_path / "data/keys").mkdir(parents=True)
    key = tmp_path / "data/keys/devnet.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o600)
    return tmp_path


def test_backup_damage_restore_gives_an_intact_ledger_with_equal_rows(site: Path) -> None:
    rows = make_ledger(site / "data/mev-bot.db", 500)
    backup = run("backup.sh", cwd=site, MEV_BACKUP_PASSPHRASE=PASSPHRASE)
    assert backup.returncode == 0, backup.stderr
    daily = site / "backups/daily"
    assert sorted(p.name for p in daily.iterdir()) == [
        f"config-{STAMP}.tar.gz", f"database-{STAMP}.chain", f"database-{STAMP}.db",
        f"keys-{STAMP}.gpg",
    ]  # fmt: skip
    assert (daily / f"database-{STAMP}.chain").read_text() == "999\n"
    assert b"ab" * 32 not in (daily / f"keys-{STAMP}.gpg").read_bytes()

    damage(site / "data/mev-bot.db")
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(site / "data/mev-bot.db").execute(
            "SELECT COUNT(*) FROM outcomes"
        ).fetchall()

    restore = run("restore.sh", "-b", str(daily / f"database-{STAMP}.db"), cwd=site)
    assert restore.returncode == 0, restore.stderr
    assert "restore: PRAGMA integrity_check: ok" in restore.stdout.splitlines()
    assert restored_rows(restore.stdout) == rows


def test_restore_refuses_a_damaged_backup(site: Path) -> None:
    make_ledger(site / "data/mev-bot.db", 300)
    assert run("backup.sh", "--without-key", cwd=site).returncode == 0
    backup = site / f"backups/daily/database-{STAMP}.db"
    damage(backup)
    before = (site / "data/mev-bot.db").read_bytes()
    restore = run("restore.sh", "-b", str(backup), cwd=site)
    assert restore.returncode == 1
    assert "fails integrity_check" in restore.stderr
    assert (site / "data/mev-bot.db").read_bytes() == before  # the live file is untouched


def test_backup_without_passphrase_never_copies_the_key_and_says_so(site: Path) -> None:
    """Skipping the key is a failure (exit 1) unless --without-key says it is intended."""
    make_ledger(site / "data/mev-bot.db", 10)
    backup = run("backup.sh", cwd=site, MEV_BACKUP_PASSPHRASE="")
    assert backup.returncode == 1
    assert backup.stderr == (
        "backup: key NOT backed up (skipped): set MEV_BACKUP_PASSPHRASE to store it "
        "gpg-encrypted, or pass --without-key if skipping it is intended\n"
    )
    assert not list((site / "backups/daily").glob("keys-*"))
    intended = run("backup.sh", "--without-key", cwd=site, MEV_BACKUP_PASSPHRASE="")
    assert intended.returncode == 0, intended.stderr
    assert "backup: key skipped as asked (--without-key)" in intended.stdout.splitlines()
    assert not list((site / "backups/daily").glob("keys-*"))


def test_restore_refuses_while_the_ledger_is_held_open_and_loses_nothing(site: Path) -> None:
    """Submit holds `<db>.lock` (shared flock) while its Ledger is open: restore refuses (3),
    the live file is untouched and a row booked afterwards is still there."""
    from services.submit.ledger import Ledger

    make_ledger(site / "data/mev-bot.db", 50)
    assert run("backup.sh", "--without-key", cwd=site).returncode == 0
    backup = site / f"backups/daily/database-{STAMP}.db"
    live = Ledger(site / "data/mev-bot.db")  # as submit opens it
    try:
        before = (site / "data/mev-bot.db").read_bytes()
        restore = run("restore.sh", "-b", str(backup), cwd=site)
        assert restore.returncode == 3
        assert restore.stderr.startswith(
            "restore: refusing: a service holds the ledger data/mev-bot.db open "
        )
        assert "(nothing was changed; --force overrides)" in restore.stderr
        assert (site / "data/mev-bot.db").read_bytes() == before
    finally:
        live.close()
    restore = run("restore.sh", "-b", str(backup), cwd=site)  # submit stopped: restores
    assert restore.returncode == 0, restore.stderr
    assert "restore: backup chain 999 matches config/production.yaml" in restore.stdout


def test_restore_refuses_a_backup_of_another_chain_unless_forced(site: Path) -> None:
    rows = make_ledger(site / "data/mev-bot.db", 20)
    assert run("backup.sh", "--without-key", cwd=site).returncode == 0
    backup = site / f"backups/daily/database-{STAMP}.db"
    (site / f"backups/daily/database-{STAMP}.chain").write_text("1\n")
    make_ledger(site / "data/other.db", 3)
    restore = run("restore.sh", "-b", str(backup), "-d", "data/other.db", cwd=site)
    assert restore.returncode == 3
    assert restore.stderr == (
        "restore: refusing: the backup is of chain 1, config/production.yaml is chain 999 "
        "(nothing was changed; --force overrides)\n"
    )
    forced = run("restore.sh", "-b", str(backup), "-d", "data/other.db", "--force", cwd=site)
    assert forced.returncode == 0, forced.stderr
    assert restored_rows(forced.stdout) == rows


def test_disaster_recovery_restores_config_key_and_ledger(site: Path) -> None:
    rows = make_ledger(site / "data/mev-bot.db", 200)
    valid = write_config(site / "gen", "nats://127.0.0.1:4222", 999)  # DR validates it
    (site / "config/production.yaml").write_text(valid.read_text())
    config = (site / "config/production.yaml").read_text()
    assert run("backup.sh", cwd=site, MEV_BACKUP_PASSPHRASE=PASSPHRASE).returncode == 0
    shutil.rmtree(site / "config")
    shutil.rmtree(site / "data")

    recovery = run("disaster-recovery.sh", cwd=site, MEV_BACKUP_PASSPHRASE=PASSPHRASE)
    assert recovery.returncode == 0, recovery.stderr
    assert (site / "config/production.yaml").read_text() == config
    key = site / "data/keys/devnet.key"
    assert key.read_text() == "ab" * 32 + "\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert restored_rows(recovery.stdout) == rows
    assert "disaster-recovery: ./config/production.yaml validates (offline: start the " in (
        recovery.stdout
    )


def test_key_only_rotation_leaves_a_0600_key_and_an_archive(site: Path) -> None:
    """--key-only: a key that owns no executor (the on-chain path: test_rotate_keys.py)."""
    rotate = run("rotate-keys.sh", "--key-only", cwd=site)
    assert rotate.returncode == 0, rotate.stderr
    key = site / "data/keys/devnet.key"
    new = key.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", new) and new != "ab" * 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    archive = site / "data/keys/archive"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    (old,) = archive.iterdir()
    assert old.read_text() == "ab" * 32 + "\n"
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert sorted(p.name for p in key.parent.iterdir()) == ["archive", "devnet.key"]
    assert "rotate-keys: next steps" in rotate.stdout


def test_emergency_rotation_rotates_nothing_when_the_stop_is_not_acknowledged(
    site: Path,
) -> None:
    """NATS on a port where nothing listens: the stop cannot be confirmed. The script finds the
    checkout's mev-bot by itself (no variable), exits 3 and leaves the key as it was."""
    config = write_config(site, f"nats://127.0.0.1:{free_port()}", 999)
    rotate = run("rotate-keys.sh", "emergency", "--config", str(config), cwd=site)
    assert rotate.returncode == 3
    assert "command not found" not in rotate.stderr
    assert "emergency stop NOT acknowledged by submit: nothing rotated" in rotate.stderr
    assert (site / "data/keys/devnet.key").read_text() == "ab" * 32 + "\n"
    assert sorted(p.name for p in (site / "data/keys").iterdir()) == ["devnet.key"]


def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (make setup installs it)")
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    assert len(scripts) == 5
    out = subprocess.run([shellcheck, *scripts], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout
