"""`mev-bot nats-auth init|rotate|show|declare`: make, rotate and inspect the bus credentials.

The files live in `nats.credentials_dir` (or `--dir`): `<user>.nk` (a seed, 0600, one per user)
and `auth.conf` (the server's `authorization` block: public keys and permissions only). This
command never prints a seed.
"""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path

from mev_common import nats_auth
from mev_common.settings import Settings


def auth_dir(settings: Settings, given: str | None) -> Path:
    return Path(given or settings.nats.credentials_dir or nats_auth.DEFAULT_DIR)


def run_nats_auth(settings: Settings, action: str, directory: Path, user: str | None) -> int:
    if action == "init":
        nats_auth.ensure_credentials(directory)
        say_files(directory)
        print(f"server config: {directory / nats_auth.AUTH_CONF} (include it in nats-server.conf)")
        return 0
    if action == "rotate":
        if user not in nats_auth.USERS:
            print(
                f"mev-bot: nats-auth rotate USER: one of {', '.join(nats_auth.USERS)}",
                file=sys.stderr,
            )
            return 2
        path = nats_auth.rotate(directory, user)
        print(f"new credential for {user}: {path} (public key {nats_auth.public_key(path)})")
        print("next: reload nats-server (SIGHUP; compose: docker compose kill -s HUP nats), "
              f"then restart {user}")  # fmt: skip
        return 0
    if action == "show":
        return say_files(directory)
    return asyncio.run(declare(settings))


def say_files(directory: Path) -> int:
    missing = 0
    for user in nats_auth.USERS:
        path = nats_auth.seed_path(directory, user)
        if not path.exists():
            print(f"{user:<9} {path}  MISSING (mev-bot nats-auth init)")
            missing += 1
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        print(f"{user:<9} {path}  mode {mode:o}  public key {nats_auth.public_key(path)}")
    return 1 if missing else 0


async def declare(settings: Settings) -> int:
    from mev_common.bus import Bus
    from mev_common.consumer_decl import ConsumerMismatch

    try:
        options = nats_auth.connect_options(settings.nats, nats_auth.OPERATOR)
        bus = await Bus.connect(
            settings.nats.url, "mev-bot-declare", settings.nats.connect_timeout_s, 3, options
        )
    except Exception as exc:
        print(f"mev-bot: cannot connect to NATS as operator: {exc}", file=sys.stderr)
        return 1
    try:
        await nats_auth.declare_bus(bus, settings)
    except ConsumerMismatch as exc:
        print(f"mev-bot: {exc}", file=sys.stderr)
        return 1
    finally:
        await bus.close()
    print("streams, buckets and consumers declared")
    return 0
