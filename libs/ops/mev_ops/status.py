"""`mev-bot status`: one table of every service instance, from the control KV and JetStream.

Why the KV and not HTTP: in compose every service listens on 8080 inside its own container
and replicas come and go with `--scale`; heartbeats reach the operator from any container or
the host without knowing a host or port. Consumer lag (pending + unacked) comes from the
shared durable consumer of each stage, so every replica of a stage shows the same lag.
Exit 0 when every service has a healthy instance and no instance is unhealthy or stale.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import nats.js.errors
import orjson
from mev_common import control
from mev_common import lifecycle_keys as keys
from mev_common.settings import SERVICE_NAMES, Settings
from mev_common.subjects import consumer_specs

from mev_ops.instances import (
    BrokerUnreachable,
    Instance,
    connect,
    control_bucket,
    read_instances,
)

COLUMNS = (
    "SERVICE", "INSTANCE", "HEALTH", "READY", "VERSION", "UPTIME", "LAG", "RPC/MIN", "LAST ERROR",
)  # fmt: skip


def run_status(settings: Settings, as_json: bool = False) -> int:
    try:
        instances, lags, controls = asyncio.run(_gather(settings))
    except BrokerUnreachable as exc:
        print(f"mev-bot: {exc}", file=sys.stderr)
        return 1
    shown = [i for i in instances if i.age_s <= keys.FORGET_AFTER_S]
    rows = [row_for(i, lags) for i in shown]
    senders = {i.name: lanes_of(i.beat) for i in shown if lanes_of(i.beat)}
    missing = [s for s in SERVICE_NAMES if not any(i.healthy and i.service == s for i in instances)]
    if as_json:
        report = {"instances": rows, "control": controls, "missing": missing, "lanes": senders}
        print(orjson.dumps(report).decode())
    else:
        print(render_table(rows))
        print("\n".join(lane_lines(senders)) or "lanes: (no active submit reports them yet)")
        print("control: " + "  ".join(f"{k}={v}" for k, v in controls.items()))
        if missing:
            print(f"no healthy instance of: {', '.join(missing)}")
    bad = missing or any(r["health"] != "ok" for r in rows)
    return 1 if bad else 0


async def _gather(
    settings: Settings,
) -> tuple[list[Instance], dict[str, int | None], dict[str, str]]:
    chain = settings.chain.chain_id
    nc = await connect(settings)
    try:
        kv = await control_bucket(nc)
        instances = await read_instances(kv, chain)
        js = nc.jetstream()
        lags: dict[str, int | None] = {}
        for service, spec in consumer_specs(settings).items():
            try:
                info = await js.consumer_info(spec.stream, spec.durable)
                lags[service] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            except nats.js.errors.NotFoundError:
                lags[service] = None
        controls: dict[str, str] = {}
        for name in control.CONTROL_KEYS:
            try:
                entry = await kv.get(control.control_key(chain, name))
                controls[name] = shown_control(name, (entry.value or b"").decode())
            except nats.js.errors.KeyNotFoundError:
                controls[name] = "-"
        return instances, lags, controls
    finally:
        await nc.close()


def shown_control(name: str, value: str) -> str:
    """The value as the services apply it: one that breaks its key's rule (written to the KV
    around the CLI) is shown as rejected, so status never presents it as in force."""
    if not value:
        return "-"
    try:
        control.validate(name, value)
    except control.ControlValueError as exc:
        fail_safe = ": treated as STOPPED (fail safe)" if name == control.EMERGENCY_STOP else ""
        return f"{value} (REJECTED by the services: {exc}{fail_safe})"
    return value


def row_for(instance: Instance, lags: dict[str, int | None]) -> dict[str, Any]:
    beat = instance.beat
    health = beat.get("status", "?") if instance.fresh else f"stale {instance.age_s:.0f}s"
    lag = lags.get(instance.service, None) if instance.service in lags else "-"
    return {
        "service": instance.service,
        "instance": instance.name,
        "health": health,
        "ready": "yes" if beat.get("ready") else "no",
        "version": str(beat.get("version", "?")),
        "uptime_s": float(beat.get("uptime_s", 0.0)),
        "lag": "?" if lag is None else lag,
        "rpc_per_min": rpc_use(beat),
        "last_error": last_error(beat),
    }


def lanes_of(beat: dict[str, Any]) -> list[dict[str, Any]]:
    """A submit instance's sender accounts (nonce lanes, keys.lanes) from its `nonces` health
    check: address (never a key), next nonce, txs in flight; [] from other services."""
    check = (beat.get("checks") or {}).get("nonces")
    detail = check.get("detail") if isinstance(check, dict) else None
    if isinstance(detail, dict):
        detail = [detail]
    return [d for d in detail if isinstance(d, dict)] if isinstance(detail, list) else []


def lane_lines(senders: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One line per lane of each submit instance: the address setTrader must have named."""
    return [
        f"lane {n} of {name}: {lane.get('address', '?')} (next nonce {lane.get('next', '?')}, "
        f"{lane.get('in_flight', '?')} in flight)"
        for name, lanes in senders.items()
        for n, lane in enumerate(lanes)
    ]


def rpc_use(beat: dict[str, Any]) -> str:
    """RPC calls in the last minute, over the service's share of chain.rpc_budget_per_minute
    when one is set ("38/40"); "-" from a service that does not report it."""
    used, share = beat.get("rpc_calls_last_min"), beat.get("rpc_budget_per_min")
    if used is None:
        return "-"
    return f"{used}/{share:g}" if share else str(used)


def last_error(beat: dict[str, Any]) -> str:
    """A failing check first (it explains the health), else the last ERROR log line."""
    for name, check in (beat.get("checks") or {}).items():
        if isinstance(check, dict) and not check.get("ok", True):
            return f"{name}: {check.get('detail', '')}"[:80]
    err = beat.get("last_error")
    if isinstance(err, dict) and err.get("msg"):
        return str(err["msg"])[:80]
    return "-"


def format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def render_table(rows: list[dict[str, Any]]) -> str:
    cells = [list(COLUMNS)] + [
        [
            r["service"],
            r["instance"],
            r["health"],
            r["ready"],
            r["version"],
            format_uptime(r["uptime_s"]),
            str(r["lag"]),
            r["rpc_per_min"],
            r["last_error"],
        ]
        for r in rows
    ]
    widths = [max(len(row[c]) for row in cells) for c in range(len(COLUMNS))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    if not rows:
        lines.append("(no service instance has a heartbeat in the control KV)")
    return "\n".join(lines)
