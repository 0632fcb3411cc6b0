"""Is the emergency stop engaged? Asked by `python -m mev_ops.rotate --lanes` before anything,
by scripts/rotate-keys.sh when `mev-bot --emergency-stop` was not acknowledged, and by that
command itself (control_cmds.py) to tell an operator that no submit runs to acknowledge it.

    python -m mev_ops.stop_check [--config PATH]   exit 0 engaged, 3 not (or unknown), 2 config

Replacing keys while submit may still send is unsafe: a trade signed by an old lane key after
its `setTrader(old, false)` reverts NotTrader and burns its gas, and the nonce guard
(rotate_lanes.require_settled) only sees what is already in flight. Engaged means: the control
KV's `<chain>.emergency_stop` reads stopped, and every submit that could send has acknowledged
that revision. Who could send: every live instance (fresh heartbeat) and every holder of a
submit lease (`mev-submit-lease`, `<chain>.<address>`: a submit sends only while it holds the
lease of its key, and the broker expires a lease 3 s after its holder's last refresh, so a
holder is running even when its heartbeat is late). Neither a heartbeat nor a lease: no submit
is running, which is safe too, since one that starts reads the stop before it takes a lease.
NATS unreachable means unknown: refused.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from mev_common import control
from mev_common.nats_auth import LEASE_BUCKET
from mev_common.settings import Settings
from nats.aio.client import Client
from nats.js.kv import KeyValue

from mev_ops.instances import (
    BrokerUnreachable,
    connect,
    control_bucket,
    read_instances,
    read_prefix,
)

FIX = (
    "nothing was changed: run `mev-bot --config CONFIG --emergency-stop` (acknowledged by "
    "every running submit, or with none running), then rerun; `mev-bot --resume` once the new "
    "keys are in place"
)


NO_SUBMIT = "no fresh heartbeat, no lease held"


class StopNotEngaged(RuntimeError):
    """The stop is not engaged (or cannot be confirmed); the message says what to do."""


def check_stop(settings: Settings) -> tuple[str | None, str]:
    """(what keeps the stop from counting as engaged or None, why it counts when it does)."""
    try:
        return asyncio.run(_stop_state(settings))
    except BrokerUnreachable as exc:
        return f"cannot check it: {exc}", ""
    except (nats.errors.Error, OSError) as exc:
        return f"cannot check it: {type(exc).__name__}: {exc}", ""


def require_stop(settings: Settings) -> None:
    """Return if the stop is engaged and no submit that could send has missed it, else raise."""
    problem, _ = check_stop(settings)
    if problem:
        raise StopNotEngaged(f"--lanes needs the emergency stop engaged; {problem}; {FIX}")


async def _stop_state(settings: Settings) -> tuple[str | None, str]:
    chain = settings.chain.chain_id
    nc = await connect(settings)
    try:
        kv = await control_bucket(nc)
        key = control.control_key(chain, control.EMERGENCY_STOP)
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return f"{key} is not set", ""
        text = (entry.value or b"").decode(errors="replace").strip()
        try:
            stopped = control.parse_emergency_stop(text)
        except control.ControlValueError:
            stopped = False  # submit treats it as stopped, but an operator should set it cleanly
        if not stopped:
            return f"{key}={text!r} (revision {entry.revision})", ""
        revision = int(entry.revision or 0)
        live = await running_submits(nc, kv, chain)
        where = f"{key}=1 (revision {revision})"
        if not live:
            return None, f"{where}; no submit is running ({NO_SUBMIT})"
        waiting = []
        for spelt, name in live.items():
            ack = control.ack_key(chain, control.EMERGENCY_STOP, spelt)
            try:
                applied, reason = control.parse_ack((await kv.get(ack)).value)
            except (nats.js.errors.KeyNotFoundError, ValueError, KeyError):
                applied, reason = 0, None
            if applied < revision or (applied == revision and reason is not None):
                waiting.append(name)
        if waiting:
            return (
                f"{where} is not acknowledged by running submit {', '.join(sorted(waiting))}",
                "",
            )
        return None, f"{where}; acknowledged by submit {', '.join(sorted(live.values()))}"
    finally:
        await nc.close()


async def running_submits(nc: Client, kv: KeyValue, chain_id: int) -> dict[str, str]:
    """Every submit that could send ({ack-key spelling: name}): a fresh heartbeat or a lease."""
    live = {
        i.key_instance: i.name
        for i in await read_instances(kv, chain_id)
        if i.service == "submit" and i.fresh
    }
    for instance in await lease_holders(nc, chain_id):
        live.setdefault(instance.replace(".", "_"), instance)
    return live


async def stop_held_without_submit(nc: Client, kv: KeyValue, chain_id: int) -> str | None:
    """What holds when the stop flag reads stopped and no submit is running (nothing can send,
    and a submit that starts reads the flag before it takes a lease); None otherwise."""
    key = control.control_key(chain_id, control.EMERGENCY_STOP)
    try:
        entry = await kv.get(key)
        stopped = control.parse_emergency_stop((entry.value or b"").decode(errors="replace"))
    except (nats.js.errors.KeyNotFoundError, control.ControlValueError):
        return None
    if not stopped or await running_submits(nc, kv, chain_id):
        return None
    return (
        f"{key}=1 (revision {entry.revision}) is set; no submit is running to acknowledge it "
        f"({NO_SUBMIT}); any submit that starts reads it first and refuses to trade until "
        "`mev-bot --resume`"
    )


async def lease_holders(nc: Client, chain_id: int) -> set[str]:
    """Instances holding a submit lease of this chain (no bucket: no submit ever ran)."""
    try:
        kv = await nc.jetstream().key_value(LEASE_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return set()
    values = await read_prefix(kv, f"{chain_id}.*")
    return {v.decode(errors="replace").strip() for v in values.values() if v.strip()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mev_ops.stop_check", description=__doc__)
    parser.add_argument("--config", metavar="PATH", help="config YAML (default as mev-bot)")
    args = parser.parse_args(argv)
    from mev_ops.cli import _settings as load_or_report  # prints each config problem

    settings = load_or_report(args.config)
    if settings is None:
        return 2
    problem, engaged = check_stop(settings)
    if problem:
        print(f"stop_check: NOT engaged: {problem}", file=sys.stderr, flush=True)
        return 3
    print(f"stop_check: emergency stop engaged: {engaged}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
