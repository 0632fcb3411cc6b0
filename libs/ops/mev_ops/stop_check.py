"""Is the emergency stop engaged? Asked by `python -m mev_ops.rotate --lanes` before anything.

Replacing the lane keys while submit may still send is unsafe: a trade signed by an old lane
key after its `setTrader(old, false)` reverts NotTrader and burns its gas, and the nonce guard
(rotate_lanes.require_settled) only sees what is already in flight. scripts/rotate-keys.sh
engages the stop itself (`mev-bot --emergency-stop`, acknowledged); run directly, the command
checks it instead: the control KV's `<chain>.emergency_stop` must read stopped, and every live
submit instance (fresh heartbeat) must have acknowledged that revision. No live submit is fine:
one that starts applies the stop before it sends. NATS unreachable means unknown: refused.
"""

from __future__ import annotations

import asyncio

import nats.errors
import nats.js.errors
from mev_common import control
from mev_common.settings import Settings

from mev_ops.instances import BrokerUnreachable, connect, control_bucket, read_instances

FIX = (
    "nothing was changed: run `mev-bot --config CONFIG --emergency-stop` (it must say "
    "acknowledged), then rerun; `mev-bot --resume` once the new keys are in place"
)


class StopNotEngaged(RuntimeError):
    """The stop is not engaged (or cannot be confirmed); the message says what to do."""


def require_stop(settings: Settings) -> None:
    """Return if the stop is engaged and acknowledged by every live submit, else raise."""
    try:
        problem = asyncio.run(_stop_problem(settings))
    except BrokerUnreachable as exc:
        problem = f"cannot check it: {exc}"
    except (nats.errors.Error, OSError) as exc:
        problem = f"cannot check it: {type(exc).__name__}: {exc}"
    if problem:
        raise StopNotEngaged(f"--lanes needs the emergency stop engaged; {problem}; {FIX}")


async def _stop_problem(settings: Settings) -> str | None:
    """What keeps the stop from counting as engaged, or None."""
    chain = settings.chain.chain_id
    nc = await connect(settings)
    try:
        kv = await control_bucket(nc)
        key = control.control_key(chain, control.EMERGENCY_STOP)
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return f"{key} is not set"
        text = (entry.value or b"").decode(errors="replace").strip()
        try:
            stopped = control.parse_emergency_stop(text)
        except control.ControlValueError:
            stopped = False  # submit treats it as stopped, but an operator should set it cleanly
        if not stopped:
            return f"{key}={text!r} (revision {entry.revision})"
        revision = int(entry.revision or 0)
        waiting = []
        for instance in await read_instances(kv, chain):
            if instance.service != "submit" or not instance.fresh:
                continue
            ack = control.ack_key(chain, control.EMERGENCY_STOP, instance.key_instance)
            try:
                applied, reason = control.parse_ack((await kv.get(ack)).value)
            except (nats.js.errors.KeyNotFoundError, ValueError, KeyError):
                applied, reason = 0, None
            if applied < revision or (applied == revision and reason is not None):
                waiting.append(instance.name)
        if waiting:
            return (
                f"{key}=1 (revision {revision}) is not acknowledged by running submit "
                f"{', '.join(sorted(waiting))}"
            )
        return None
    finally:
        await nc.close()
