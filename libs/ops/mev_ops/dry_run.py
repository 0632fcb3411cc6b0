"""`mev-bot --dry-run --duration 60s`: the whole stack, as `mev-bot run` starts it, with submit
in dry-run mode (signs and books, never sends); then the would-be sends and their P&L.

Why a separate ledger file (`<database>.dry-run.db`, emptied first): dry-run bookings must not
mix with real P&L, and the summary then covers exactly this run. Why env overrides and not a
new code path: the services read `MEV_SUBMIT__DRY_RUN` like any key, so what runs is what
production runs. With `services.separate_hosts` (containers: every service on 8080/9090) the
children get distinct free ports, so a dry run also works inside one container.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from mev_common.ledger_view import LedgerUnreadable, distinct_would_be_sends, read_trades
from mev_common.settings import SERVICE_NAMES, Settings, format_wei, load_settings

from mev_ops.nats_server import free_port

HEALTHY_WITHIN_S = 60.0
SHOWN_SENDS = 20


def dry_run_ledger(settings: Settings) -> Path:
    db = Path(settings.database.path)
    return db.with_name(f"{db.stem}.dry-run.db")


def dry_run_env(settings: Settings) -> dict[str, str]:
    """The overrides every child process inherits."""
    env = {
        "MEV_SUBMIT__DRY_RUN": "true",
        "MEV_DATABASE__PATH": str(dry_run_ledger(settings)),
    }
    if settings.services.separate_hosts:
        env["MEV_SERVICES__SEPARATE_HOSTS"] = "false"
        for name in SERVICE_NAMES:
            prefix = f"MEV_SERVICES__{name.upper()}__"
            env[prefix + "HEALTH_PORT"] = str(free_port())
            env[prefix + "METRICS_PORT"] = str(free_port())
    return env


def live_stack(settings: Settings) -> list[str]:
    """What of a running stack this dry run would collide with: its embedded NATS port and the
    services' health/metrics ports in use, or (NATS shared, not embedded) fresh heartbeats of
    this chain's services. Empty when nothing runs."""
    host = settings.services.host
    found: list[str] = []
    if settings.nats.embedded:
        nats_host, nats_port = settings.nats.url.rsplit("//", 1)[1].rsplit(":", 1)
        if port_in_use(nats_host, int(nats_port)):
            found.append(f"NATS {nats_host}:{nats_port}")
    if not settings.services.separate_hosts:  # containers: the children get free ports
        for name in SERVICE_NAMES:
            ports = getattr(settings.services, name)
            for kind, port in (("health", ports.health_port), ("metrics", ports.metrics_port)):
                if port_in_use(host, port):
                    found.append(f"{name} {kind} {host}:{port}")
    if not settings.nats.embedded and not found:
        found.extend(_live_heartbeats(settings))
    return found


def port_in_use(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _live_heartbeats(settings: Settings) -> list[str]:
    import asyncio

    from mev_ops.instances import BrokerUnreachable, connect, control_bucket, read_instances

    async def read() -> list[str]:
        nc = await connect(settings)
        try:
            kv = await control_bucket(nc)
            chain = settings.chain.chain_id
            return [
                f"{i.service} instance {i.name} (heartbeat on {settings.nats.url})"
                for i in await read_instances(kv, chain)
                if i.fresh
            ]
        finally:
            await nc.close()

    try:
        return asyncio.run(read())
    except BrokerUnreachable:
        return []


def run_dry(config: Path, settings: Settings, duration_s: float) -> int:
    from mev_ops.stack import health_urls, run_stack, wait_healthy

    if busy := live_stack(settings):
        print(
            "mev-bot: refusing the dry run: a stack is already running on this config's ports "
            f"({'; '.join(busy)}). Nothing was started or changed. Stop that stack first "
            "(`mev-bot --shutdown-graceful`, or Ctrl-C on `mev-bot run`), or give the dry run "
            "a config with other ports.",
            file=sys.stderr,
            flush=True,
        )
        return 2

    ledger = dry_run_ledger(settings)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    os.environ.update(dry_run_env(settings))
    settings = load_settings(config)  # with the overrides: the ports the children will use
    print(f"mev-bot: dry run for {duration_s:g}s once healthy; ledger {ledger}", flush=True)

    finished = threading.Event()

    def stop_after_duration() -> None:
        wait_healthy(health_urls(settings), HEALTHY_WITHIN_S, finished.is_set)
        if not finished.wait(duration_s):
            os.kill(os.getpid(), signal.SIGTERM)  # run_stack's own stop path: drain, then exit

    threading.Thread(target=stop_after_duration, name="dry-run-timer", daemon=True).start()
    try:
        code = run_stack(str(config))
    finally:
        finished.set()
    print(summarize(ledger), flush=True)
    return code


def summarize(ledger: Path) -> str:
    """Would-be sends and P&L by strategy and status, from the dry-run ledger's columns.

    Each opportunity counts once (`ledger_view.distinct_would_be_sends`). Its net is
    simulate's proven net profit (`bundles.net_profit_wei`: gas at the fee it would pay); a
    mined bundle nets its real gas."""
    if not ledger.exists():
        return "dry run: no ledger written (submit booked nothing)"
    try:
        rows = [t for t in read_trades(ledger) if t.status is not None]
    except LedgerUnreadable as exc:
        return f"dry run: {exc}"
    lines = [f"dry run: {len(rows)} bundles booked"]
    sends = distinct_would_be_sends(rows)
    repeats = sum(1 for r in rows if r.status == "dry_run") - len(sends)
    lines.append(
        f"would-be sends: {len(sends)} distinct opportunities"
        + (f" ({repeats} repeats of one already counted)" if repeats else "")
    )
    for r in sends[:SHOWN_SENDS]:
        lines.append(
            f"  {r.bundle_id}  {r.strategy}  block {r.state_block}  "
            f"profit {_wei(r.simulated_profit)}  net {_wei(r.net)}"
        )
    if len(sends) > SHOWN_SENDS:
        lines.append(f"  ... and {len(sends) - SHOWN_SENDS} more")
    counted = {id(r) for r in sends}
    totals: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        if r.status == "dry_run" and id(r) not in counted:
            continue
        t = totals.setdefault((r.strategy, str(r.status)), [0, 0, 0])
        t[0] += 1
        t[1] += r.simulated_profit
        t[2] += r.net
    lines.append("by strategy and status (distinct; simulated profit, net of gas):")
    for (strategy, status), (count, profit, net) in sorted(totals.items()):
        lines.append(
            f"  {strategy:<20} {status:<9} {count:>5}  {_wei(profit):>20}  net {_wei(net)}"
        )
    net = sum(r.net for r in sends)
    lines.append(f"P&L of the would-be sends, net of gas: {_wei(net)}")
    return "\n".join(lines)


def _wei(wei: int) -> str:
    return f"-{format_wei(-wei)}" if wei < 0 else format_wei(wei)
