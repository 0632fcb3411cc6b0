"""`mev-bot --dry-run --duration 60s`: the whole stack, as `mev-bot run` starts it, with submit
in dry-run mode (signs and books, never sends); then the would-be sends and their P&L.

Why a separate ledger file (`<database>.dry-run.db`, emptied first): dry-run bookings must not
mix with real P&L, and the summary then covers exactly this run. Why env overrides and not a
new code path: the services read `MEV_SUBMIT__DRY_RUN` like any key, so what runs is what
production runs. With `services.separate_hosts` (containers: every service on 8080/9090) the
children get distinct free ports, so a dry run also works inside one container.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
from pathlib import Path

from mev_common.nats_server import free_port
from mev_common.settings import SERVICE_NAMES, Settings, format_wei, load_settings

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


def run_dry(config: Path, settings: Settings, duration_s: float) -> int:
    from mev_common.stack import health_urls, run_stack, wait_healthy

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
    """Would-be sends and P&L by strategy and status, from the dry-run ledger."""
    if not ledger.exists():
        return "dry run: no ledger written (submit booked nothing)"
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT b.id, b.strategy, b.block_number, b.simulated_profit, o.status, "
            "o.gas_used, o.effective_gas_price, o.reason "
            "FROM bundles b JOIN outcomes o ON o.bundle_id = b.id ORDER BY o.booked_at"
        ).fetchall()
    except sqlite3.Error as exc:
        return f"dry run: cannot read the ledger {ledger}: {exc}"
    finally:
        db.close()
    lines = [f"dry run: {len(rows)} bundles booked"]
    sends = [r for r in rows if r[4] == "dry_run"]
    lines.append(f"would-be sends: {len(sends)}")
    for bundle_id, strategy, block, simulated, *_ in sends[:SHOWN_SENDS]:
        lines.append(f"  {bundle_id}  {strategy}  block {block}  profit {_wei(simulated)}")
    if len(sends) > SHOWN_SENDS:
        lines.append(f"  ... and {len(sends) - SHOWN_SENDS} more")
    totals: dict[tuple[str, str], list[int]] = {}
    for _, strategy, _, simulated, status, gas_used, gas_price, reason in rows:
        t = totals.setdefault((strategy, status), [0, 0, 0])
        t[0] += 1
        t[1] += _int(simulated)
        t[2] += net_of_gas(_int(simulated), _int(gas_used) * _int(gas_price), reason or "")
    lines.append("by strategy and status (simulated profit, net of gas):")
    for (strategy, status), (count, profit, net) in sorted(totals.items()):
        lines.append(
            f"  {strategy:<20} {status:<9} {count:>5}  {_wei(profit):>20}  net {_wei(net)}"
        )
    net = sum(t[2] for (_, status), t in totals.items() if status == "dry_run")
    lines.append(f"P&L of the would-be sends, net of gas: {_wei(net)}")
    return "\n".join(lines)


_NET = re.compile(r"\(net (-?[0-9]+) wei\)")


def net_of_gas(simulated: int, gas_cost: int, reason: str) -> int:
    """Submit's dry-run reason carries simulate's proven net profit (gas at the fee it would
    pay); a booked outcome with real gas has it in its columns instead."""
    match = _NET.search(reason)
    return int(match.group(1)) if match else simulated - gas_cost


def _int(value: object) -> int:
    if value is None:
        return 0
    return value if isinstance(value, int) else int(str(value), 0)


def _wei(value: object) -> str:
    wei = _int(value)
    return f"-{format_wei(-wei)}" if wei < 0 else format_wei(wei)
