"""Submit's start-up checks, each a refusal or a wait before any bundle is pulled: the key
(awaited on a devnet not deployed yet, refused if unsafe), the emergency stop as it stands
(a stop set while we were down holds), and the executor's owner (a key that does not own it
would only send reverting trades)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from eth_utils import to_checksum_address
from mev_common import metrics
from mev_common.aio import sleep_or_stop
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool
from mev_common.control import EMERGENCY_STOP, ControlState, ControlValueError, control_key
from mev_common.kv import KeyValue
from mev_common.runtime import Check, RefuseToStart, Runtime
from mev_common.settings import Settings

from services.submit.keys import KeyLoadError, Signer, load_lane_signers

log = logging.getLogger("mev.submit")

OWNER_SELECTOR = "0x8da5cb5b"  # owner()
IS_TRADER_SELECTOR = "0x4039ad0d"  # isTrader(address)


def key_is_awaited(settings: Settings) -> bool:
    """A missing key is fatal, except on a devnet not deployed yet: `devnet up` creates the key
    together with the deployment file, so submit waits for both like the other services."""
    deployment = settings.contracts.deployment_file
    return (
        not all(Path(p).exists() for p in settings.keys.lane_paths())
        and deployment is not None
        and not Path(deployment).exists()
    )


async def wait_for_key(rt: Runtime) -> list[Signer] | None:
    """Load every lane's key (the entry point has already refused an unsafe one); on a devnet
    not yet deployed, wait for `devnet up` to create them. None if stopped first."""
    while key_is_awaited(rt.settings):
        rt.add_check("key", lambda: Check(False, "waiting for devnet up", critical=False))
        await sleep_or_stop(rt.stop, 1.0)
        if rt.stop.is_set():
            return None
    try:
        signers = load_lane_signers(rt.settings.keys)
    except KeyLoadError as exc:
        log.error("refusing to start", extra={"fields": {"error": str(exc)}})
        raise
    addresses = [s.address for s in signers]
    rt.add_check("key", lambda: Check(True, addresses[0] if len(addresses) == 1 else addresses))
    return signers


async def read_emergency_stop(
    control_bucket: Callable[[], Awaitable[KeyValue]], chain_id: int, stop: asyncio.Event
) -> ControlState:
    """The control state with the emergency stop as it stands, read before anything else
    (retried until the bucket answers): a stop set while we were down holds."""
    control = ControlState()
    while not stop.is_set():
        try:
            kv = await control_bucket()
            try:
                entry = await kv.get(control_key(chain_id, EMERGENCY_STOP))
                control.apply(EMERGENCY_STOP, entry.value)
                control.revisions[EMERGENCY_STOP] = int(entry.revision or 0)
                control.apply(EMERGENCY_STOP, entry.value)
            except ControlValueError as exc:  # unparseable: apply() has set STOPPED
                log.error("emergency stop value rejected", extra={"fields": {"reason": str(exc)}})
            except Exception as exc:  # KeyNotFoundError (never set, or deleted): not stopped
                if "NotFound" not in type(exc).__name__ and "Deleted" not in type(exc).__name__:
                    raise
            metrics.EMERGENCY_STOP.set(1 if control.emergency_stop else 0)
            return control
        except Exception as exc:
            log.warning(
                "control bucket not readable, retrying", extra={"fields": {"error": repr(exc)}}
            )
            await sleep_or_stop(stop, 1.0)
    return control


async def check_owner(rpc: RpcPool, executor: str, signer: str) -> None:
    """Refuse to run a key that does not own the executor: its trades would all revert."""
    raw = await rpc.call("eth_call", [{"to": executor, "data": OWNER_SELECTOR}, "latest"])
    data = bytes.fromhex(str(raw).removeprefix("0x"))
    owner = to_checksum_address(data[12:32]) if len(data) >= 32 else f"nobody (owner() = {raw})"
    if owner.lower() != signer.lower():
        raise RefuseToStart(
            f"executor {executor} is owned by {owner}, not by this key's address {signer}: "
            "use the owner's key (keys.path) or transfer the executor's ownership to this address"
        )


async def check_traders(
    rpc: RpcPool, executor: str, lanes: list[Signer], owner_key: str = "KEYS_PATH"
) -> None:
    """Refuse to run a lane key the executor does not let trade (setTrader): its trades would
    all revert. The refusal says what to run (after a key rotation every lane is out: an
    ownership change drops the traders the previous owner named)."""
    for lane, signer in enumerate(lanes):
        if lane == 0:
            continue  # the owner: check_owner
        word = signer.address.lower().removeprefix("0x").rjust(64, "0")
        call = {"to": executor, "data": IS_TRADER_SELECTOR + word}
        try:
            raw = str(await rpc.call("eth_call", [call, "latest"]))
        except RpcError as exc:  # an executor built before trader keys: no isTrader
            raw = f"unanswered: {exc}"
        if raw.removeprefix("0x").rjust(64, "0")[-64:] != "0" * 63 + "1":
            raise RefuseToStart(
                f"executor {executor} does not let lane {lane}'s key {signer.address} trade "
                f"(isTrader = {raw}): the owner must call setTrader({signer.address}, true): "
                f"run python -m mev_ops.rotate --config CONFIG --traders-only --new-key "
                f"{owner_key} (docs/RUNBOOK.md, nonce lanes), or lower keys.lanes"
            )
