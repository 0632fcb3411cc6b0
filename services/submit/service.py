"""Submit: `mev.<chain>.bundles` (durable pull) in; signed txs to the chain; the SQLite ledger
and `mev.<chain>.outcomes` out.

Start order is part of the safety story: key checked (refuse to run on an unsafe key), control
values applied (an emergency stop set before a crash still holds), the executor's owner checked
against the key (exit 2 otherwise), lease held (one submitter per key), nonces synced with the
chain, booked-but-unpublished outcomes published; only then are bundles pulled. Tracking runs
alongside: the chain head (read over RPC, never from a message), receipts, cancels past
deadline, P&L gauges. A tripped loss limit (services/submit/limits.py) or a dead control
watcher stops every send and shows in /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from eth_utils import to_checksum_address
from mev_common import metrics, subjects
from mev_common.bus import Envelope
from mev_common.chain import budget
from mev_common.chain.contracts import ChainContracts
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool, wait_for_chain
from mev_common.control import (
    EMERGENCY_STOP,
    NONCE_RESET,
    ControlState,
    ControlValueError,
    control_key,
    ensure_control_bucket,
    watch_control,
    watch_rpc_controls,
)
from mev_common.messages import Bundle, MessageError, Outcome, Withdrawal, decode
from mev_common.runtime import Check, RefuseToStart, Runtime, rpc_check
from mev_common.settings import STRATEGY_NAMES, Settings
from nats.aio.msg import Msg

from services.submit.block_feed import follow_blocks
from services.submit.chain_binding import bind_ledger, chain_identity, record_in_control_bucket
from services.submit.control_guard import ControlGuard
from services.submit.decide import Policy
from services.submit.keys import KeyLoadError, Signer, load_signer
from services.submit.lease import Lease, ensure_lease_bucket, keep_lease, lease_key
from services.submit.ledger import Ledger
from services.submit.pnl import pnl_summary
from services.submit.ports import RpcChain
from services.submit.safety import SafetyStore
from services.submit.submitter import AfterSend, Submitter

log = logging.getLogger("mev.submit")

GAUGE_INTERVAL_S = 5.0
OWNER_SELECTOR = "0x8da5cb5b"  # owner()


def key_is_awaited(settings: Settings) -> bool:
    """A missing key is fatal, except on a devnet not deployed yet: `devnet up` creates the key
    together with the deployment file, so submit waits for both like the other services."""
    deployment = settings.contracts.deployment_file
    return (
        not Path(settings.keys.path).exists()
        and deployment is not None
        and not Path(deployment).exists()
    )


async def main(rt: Runtime, after_send: AfterSend | None = None) -> None:
    """The service; `after_send` is a test hook (tests/support/submit_kill.py), never set by
    `python -m services.submit`."""
    settings = rt.settings
    chain = rt.chain_id
    signer = await wait_for_key(rt)
    if signer is None:
        return
    control = ControlState()
    await apply_initial_control(rt, control)

    lease = Lease(lease_key(chain, signer.address), rt.instance)
    active = asyncio.Event()
    # the lease bucket is declared again after a reconnect (a server may lose its store)
    await rt.bus.declare(
        lambda: ensure_lease_bucket(rt.bus.js, lease.ttl_s, settings.nats.replicas)
    )
    tasks = [asyncio.create_task(keep_lease(rt.bus.js, lease, active, rt.stop))]
    rt.add_check(
        "lease",
        lambda: Check(True, "active" if lease.held() else f"standby (holder {lease.holder})"),
    )
    submitter: Submitter | None = None

    def stop_check() -> Check:
        trip = submitter.tripped if submitter is not None else None
        if trip is not None:  # not critical: the process is healthy, it just must not send
            return Check(False, f"TRIPPED: {trip.reason}", critical=False)
        return Check(True, "ACTIVE: nothing is sent" if control.emergency_stop else "off")

    rt.add_check("emergency_stop", stop_check)
    rt.add_check("dry_run", lambda: Check(True, settings.submit.dry_run, critical=False))
    rt.add_check("key", lambda: Check(True, signer.address))
    rpc = RpcPool(settings.chain.rpc_endpoints)
    tasks.append(
        asyncio.create_task(watch_rpc_controls(rt.bus.js, chain, rt.instance, rpc, rt.stop))
    )
    rt.add_check("rpc", lambda: rpc_check(rpc))
    tasks.append(asyncio.create_task(rpc.watch_failing(rt.stop)))
    ledger: Ledger | None = None
    safety: SafetyStore | None = None
    try:
        if not await wait_for_chain(rpc, chain, rt.stop):
            return
        contracts = await rt.wait_for_contracts()
        if contracts is None:
            return
        await check_owner(rpc, contracts.executor, signer.address)
        rt.ready = True  # standby counts as ready: it is healthy and waiting for the lease
        await wait_or_stop(active, rt.stop)
        if rt.stop.is_set():
            return
        ledger = Ledger(settings.database.path)
        safety = SafetyStore(settings.database.path)
        guard: ControlGuard | None = None
        identity = await chain_identity(rpc, chain)
        closed = bind_ledger(ledger, identity, settings.database.on_chain_change)
        await record_in_control_bucket(rt.bus.js, identity)

        async def publish(outcome: Outcome, trace: str, seen_ns: int, revision: int) -> None:
            suffix = f":r{revision}" if revision else ""  # re-booked after a reorg
            await rt.bus.publish(
                subjects.outcomes(chain),
                outcome,
                msg_id=f"outcome:{outcome.bundle_id}{suffix}",
                trace=trace or outcome.bundle_id,
                seen_ns=seen_ns,
            )

        def send_blocker() -> str | None:
            if control.emergency_stop:
                return "emergency stop active"
            if guard is not None and guard.down:
                return f"{guard.down}: emergency stop state unknown"
            if not lease.held():
                return "submit lease not held"
            if not rt.bus.nc.is_connected:
                return "NATS disconnected: control state unknown"
            if rpc_down := rpc.all_down_reason():
                return rpc_down
            return None

        submitter = Submitter(
            settings=settings,
            ledger=ledger,
            pool=RpcChain(rpc),
            signer=signer,
            policy=Policy.from_settings(settings, contracts),
            safety=safety,
            publish=publish,
            send_blocker=send_blocker,
            native_token=contracts.weth,
            control_revision=lambda: control.revisions.get(EMERGENCY_STOP, 0),
            after_send=after_send,
        )
        await submitter.fetch_head()
        await submitter.sync_nonces()
        await submitter.publish_pending()  # also the chain_reset outcomes of `closed`
        for outcome in closed:
            metrics.BUNDLES.labels(strategy=outcome.strategy, outcome=outcome.status).inc()

        async def on_control(name: str, state: ControlState) -> None:
            if name == EMERGENCY_STOP:
                submitter.stop_key_written(state.revisions.get(EMERGENCY_STOP, 0))
                metrics.EMERGENCY_STOP.set(1 if state.emergency_stop else 0)
                log.warning("emergency stop", extra={"fields": {"active": state.emergency_stop}})
            elif name == NONCE_RESET and state.nonce_reset:
                await submitter.sync_nonces()

        guard = ControlGuard(
            lambda: watch_control(
                rt.bus.js,
                chain,
                control,
                on_control,
                rt.stop,
                instance=rt.instance,
                acknowledge=frozenset({EMERGENCY_STOP, NONCE_RESET}),
                only=frozenset({EMERGENCY_STOP, NONCE_RESET}),  # RPC keys: watch_rpc_controls
                generation=lambda: rt.bus.generation,  # re-watch after NATS returns
            ),
            rt.stop,
        )
        tasks.append(asyncio.create_task(guard.supervise()))
        rt.add_check(
            "control_watcher",
            lambda: Check(
                guard is not None and not guard.down, (guard and guard.down) or "running"
            ),
        )
        under_budget = budget.process_budget().per_minute is not None  # HyperEVM: block_feed.py
        tracking = follow_blocks(rt, submitter) if under_budget else track_loop(rt, submitter)
        tasks.append(asyncio.create_task(tracking))
        tasks.append(asyncio.create_task(gauge_loop(rt, settings, contracts)))

        async def on_withdrawal(msg: Msg) -> None:
            try:
                withdrawal = decode(Withdrawal, msg.data)
            except MessageError as exc:
                metrics.ERRORS.labels(kind="bad_withdrawal").inc()
                log.warning("unreadable withdrawal", extra={"fields": {"error": str(exc)}})
                return
            await submitter.withdraw(withdrawal.opportunity_id, withdrawal.reason)

        withdrawals_sub = await rt.bus.nc.subscribe(subjects.withdrawals(chain), cb=on_withdrawal)

        async def on_bundle(env: Envelope[Bundle]) -> None:
            await submitter.handle(env.message, env.trace, env.seen_ns)
            metrics.TRANSACTIONS_PROCESSED.labels(stage="submit").inc()

        # one bundle at a time: one sender per key, nonces are sequential
        consumer = rt.consumer("submit", Bundle, on_bundle, concurrency=1)
        rt.add_check(
            "nonces",
            lambda: Check(
                True,
                {"next": submitter.nonces.next_nonce, "in_flight": len(submitter.nonces.in_flight)},
            ),
        )
        rt.add_check("ledger", lambda: Check(True, settings.database.path))
        log.info(
            "submit active",
            extra={
                "fields": {
                    "address": signer.address,
                    "executor": contracts.executor,
                    "dry_run": settings.submit.dry_run,
                    "emergency_stop": control.emergency_stop,
                }
            },
        )
        try:
            await consumer.run(rt.stop)
        finally:
            with contextlib.suppress(Exception):
                await withdrawals_sub.unsubscribe()
    finally:
        rt.stop.set()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, timeout=3.0)
        await rpc.close()
        if ledger is not None:
            ledger.close()
        if safety is not None:
            safety.close()


async def wait_or_stop(event: asyncio.Event, stop: asyncio.Event) -> None:
    waiters = {asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())}
    _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


async def wait_for_key(rt: Runtime) -> Signer | None:
    """Load the key (the entry point has already refused an unsafe one); on a devnet not yet
    deployed, wait for `devnet up` to create it."""
    while key_is_awaited(rt.settings):
        rt.add_check("key", lambda: Check(False, "waiting for devnet up", critical=False))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop.wait(), timeout=1.0)
        if rt.stop.is_set():
            return None
    try:
        return load_signer(rt.settings.keys)
    except KeyLoadError as exc:
        log.error("refusing to start", extra={"fields": {"error": str(exc)}})
        raise


async def apply_initial_control(rt: Runtime, control: ControlState) -> None:
    """Read the emergency stop before anything else: a stop set while we were down holds."""
    while not rt.stop.is_set():
        try:
            kv = await ensure_control_bucket(rt.bus.js)
            try:
                entry = await kv.get(control_key(rt.chain_id, EMERGENCY_STOP))
                control.apply(EMERGENCY_STOP, entry.value)
                control.revisions[EMERGENCY_STOP] = int(entry.revision or 0)
                control.apply(EMERGENCY_STOP, entry.value)
            except ControlValueError as exc:  # unparseable: apply() has set STOPPED
                log.error("emergency stop value rejected", extra={"fields": {"reason": str(exc)}})
            except Exception as exc:  # KeyNotFoundError (never set, or deleted): not stopped
                if "NotFound" not in type(exc).__name__ and "Deleted" not in type(exc).__name__:
                    raise
            metrics.EMERGENCY_STOP.set(1 if control.emergency_stop else 0)
            return
        except Exception as exc:
            log.warning(
                "control bucket not readable, retrying", extra={"fields": {"error": repr(exc)}}
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.stop.wait(), timeout=1.0)


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


async def track_loop(rt: Runtime, submitter: Submitter) -> None:
    """Head and receipts, both read over RPC: the head is never taken from a message."""
    interval = max(0.1, rt.settings.chain.block_time_s / 4)
    while not rt.stop.is_set():
        try:
            # over the call budget, skip a pass: receipts can wait, and a stale head only
            # makes the gate refuse (never price a trade on it)
            if not budget.process_budget().allows(3, keep_free=0.1):
                metrics.RPC_BUDGET_SKIPS.labels(what="submit_track").inc()
            else:
                await submitter.fetch_head()
                await submitter.track_once()
        except RpcError as exc:
            metrics.ERRORS.labels(kind="submit_track").inc()
            log.warning("tracking pass failed", extra={"fields": {"error": str(exc)}})
        except Exception as exc:
            metrics.ERRORS.labels(kind="submit_track").inc()
            log.exception("tracking pass failed", extra={"fields": {"error": repr(exc)}})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop.wait(), timeout=interval)


async def gauge_loop(rt: Runtime, settings: Settings, contracts: ChainContracts) -> None:
    """Success rates, profit per hour and gas efficiency over the last hour, from the ledger."""
    weth = contracts.weth
    while not rt.stop.is_set():
        try:
            since = time.time() - 3600
            hour = await asyncio.to_thread(pnl_summary, settings.database.path, since)
            metrics.BUNDLE_SUCCESS_RATE.set(hour.success_rate)
            metrics.PROFIT_ETH_PER_HOUR.set(hour.net_profit_wei(weth) / 10**18)
            metrics.GAS_EFFICIENCY_RATIO.set(hour.gas_efficiency(weth))
            for name in STRATEGY_NAMES:
                per = await asyncio.to_thread(pnl_summary, settings.database.path, since, name)
                metrics.STRATEGY_SUCCESS_RATE.labels(strategy=name).set(per.success_rate)
        except Exception as exc:
            log.warning("P&L gauges failed", extra={"fields": {"error": repr(exc)}})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop.wait(), timeout=GAUGE_INTERVAL_S)
