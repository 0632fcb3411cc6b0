"""Submit: `mev.<chain>.bundles` (durable pull) in; signed txs to the chain; the SQLite ledger
and `mev.<chain>.outcomes` out.

Start order is part of the safety story: key checked (refuse to run on an unsafe key), control
values applied (an emergency stop set before a crash still holds), the executor's owner checked
against the key (exit 2 otherwise; each further nonce lane's key must be one of its traders),
leases held (one submitter per key, one lease per lane), nonces synced with the
chain, booked-but-unpublished outcomes published; only then are bundles pulled. Tracking runs
alongside: the chain head (RPC reads and block messages), receipts, cancels past
deadline, P&L gauges. A tripped loss limit (services/submit/limits.py) or a dead control
watcher stops every send and shows in /health.
"""

from __future__ import annotations

import asyncio
import logging

from mev_common import metrics, subjects
from mev_common.aio import wait_any
from mev_common.chain import budget
from mev_common.chain.contracts import ChainContracts
from mev_common.control import EMERGENCY_STOP
from mev_common.messages import Bundle, Withdrawal
from mev_common.runtime import Check, Runtime
from mev_common.stage import Consume, Stage, open_stage

from services.submit.block_feed import follow_blocks, hint_heads
from services.submit.chain_binding import bind_ledger, chain_identity, record_in_control_bucket
from services.submit.decide import Policy
from services.submit.handlers import SubmitHandlers
from services.submit.keys import Signer
from services.submit.lease import Lease, Leases, keep_lease, lease_bucket, lease_key
from services.submit.ledger import Ledger
from services.submit.loops import gauge_loop, track_loop
from services.submit.ports import RpcChain
from services.submit.safety import SafetyStore
from services.submit.startup import check_owner, check_traders, read_emergency_stop, wait_for_key
from services.submit.submitter import AfterSend, Submitter

log = logging.getLogger("mev.submit")


async def main(rt: Runtime, after_send: AfterSend | None = None) -> None:
    """The service, in the start order above; `after_send` is a test hook
    (tests/support/submit_kill.py), never set by `python -m services.submit`."""
    signers = await wait_for_key(rt)
    if signers is None:
        return
    async with open_stage(rt) as stage:
        control = await read_emergency_stop(stage.control_bucket, rt.chain_id, rt.stop)
        leases, active = await hold_leases(stage, signers)
        handlers = SubmitHandlers(stage, control, leases)
        contracts = await stage.wait_for_chain()
        if contracts is None:
            return
        await check_owner(stage.rpc, contracts.executor, signers[0].address)
        await check_traders(stage.rpc, contracts.executor, signers, rt.settings.keys.path)
        rt.ready = True  # standby counts as ready: it is healthy and waiting for the lease
        await wait_any(active, rt.stop)
        if rt.stop.is_set():
            return
        await activate(stage, handlers, contracts, signers, after_send)
        # a few bundles in at once: each is gated, signed and committed in its turn, one at a
        # time and backruns first (turns.py); a broadcast's answer is awaited after the turn,
        # and each bundle is acked once its answer is booked (submitter.py)
        concurrency = rt.settings.services.consume_concurrency
        await stage.consume(Consume("submit", Bundle, handlers.on_bundle, concurrency))


async def hold_leases(stage: Stage, signers: list[Signer]) -> tuple[Leases, asyncio.Event]:
    """Keep (or wait for) the one-submitter-per-key lease of every lane's key; the event is set
    once all are held. The bucket is declared again after a reconnect (a server may lose its
    store)."""
    rt = stage.rt
    leases = Leases([Lease(lease_key(rt.chain_id, s.address), rt.instance) for s in signers])
    ttl_s = leases.all[0].ttl_s
    await rt.bus.declare(lambda: lease_bucket(rt.bus, ttl_s, rt.settings.nats.replicas))
    events = [asyncio.Event() for _ in signers]
    for lane, (lease, event) in enumerate(zip(leases.all, events, strict=True)):
        name = "lease" if lane == 0 else f"lease-lane{lane}"
        stage.spawn(keep_lease(rt.bus, lease, event, rt.stop), name, drain=True)
    active = asyncio.Event()

    async def all_held() -> None:
        await asyncio.gather(*(e.wait() for e in events))
        active.set()

    stage.spawn(all_held(), "leases")
    return leases, active


async def activate(
    stage: Stage,
    handlers: SubmitHandlers,
    contracts: ChainContracts,
    signers: list[Signer],
    after_send: AfterSend | None,
) -> None:
    """Lease held: the ledger bound to this chain, the submitter with its nonces synced and
    booked outcomes published, then the control guard, tracking, gauges and withdrawals."""
    rt, settings = stage.rt, stage.settings
    ledger = Ledger(settings.database.path)
    stage.on_close(ledger.close)
    safety = SafetyStore(settings.database.path, ledger)  # kept by the ledger's writes
    stage.on_close(safety.close)
    identity = await chain_identity(stage.rpc, rt.chain_id)
    closed = bind_ledger(ledger, identity, settings.database.on_chain_change)
    await record_in_control_bucket(stage.control_bucket, identity)
    submitter = handlers.submitter = Submitter(
        settings=settings,
        ledger=ledger,
        pool=RpcChain(stage.rpc),
        signer=signers[0],
        lane_signers=signers[1:],
        policy=Policy.from_settings(settings, contracts),
        safety=safety,
        publish=handlers.publish,
        send_blocker=handlers.send_blocker,
        native_token=contracts.weth,
        control_revision=lambda: handlers.control.revisions.get(EMERGENCY_STOP, 0),
        after_send=after_send,
        spawn=stage.spawn,  # its off-path head read is cancelled with the stage's tasks
        stop=rt.stop,  # a bundle not yet gated when it is set is handed back unsigned
    )
    await submitter.fetch_head()
    await submitter.sync_nonces()
    await submitter.publish_pending()  # also the chain_reset outcomes of `closed`
    for outcome in closed:
        metrics.BUNDLES.labels(strategy=outcome.strategy, outcome=outcome.status).inc()
    handlers.start_guard()
    if budget.process_budget().per_minute is not None:  # HyperEVM: head from blocks, block_feed.py
        stage.spawn(follow_blocks(stage, submitter), "track", drain=True)
    else:
        stage.spawn(track_loop(settings, submitter, rt.stop), "track", drain=True)
        await hint_heads(stage, submitter)  # and the head of each block message at once
    stage.spawn(gauge_loop(settings, contracts.weth, rt.stop), "gauges", drain=True)
    await stage.listen(subjects.withdrawals(rt.chain_id), Withdrawal, handlers.on_withdrawal)
    rt.add_check("nonces", handlers.nonces_check)
    rt.add_check("ledger", lambda: Check(True, settings.database.path))
    log.info(
        "submit active",
        extra={
            "fields": {
                "address": signers[0].address,
                "lanes": [s.address for s in signers],
                "executor": contracts.executor,
                "dry_run": settings.submit.dry_run,
                "emergency_stop": handlers.control.emergency_stop,
            }
        },
    )
