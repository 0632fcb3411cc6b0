"""Submit's handlers and its send policy: what the stage skeleton runs once the lease is held.

`send_blocker` is the last word before a signed tx leaves: an emergency stop, a dead control
watcher (a stop would go unseen), a lost lease (another submitter may hold the key), NATS down
(the control state is unknown) or every RPC endpoint down each refuse the send, named.
"""

from __future__ import annotations

import logging

from mev_common import metrics, subjects
from mev_common.bus import Envelope
from mev_common.control import EMERGENCY_STOP, NONCE_RESET, ControlState
from mev_common.messages import Bundle, Outcome, Withdrawal
from mev_common.runtime import Check
from mev_common.stage import Stage

from services.submit.control_guard import ControlGuard
from services.submit.lease import Leases
from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")

CONTROL_KEYS = frozenset({EMERGENCY_STOP, NONCE_RESET})  # RPC keys: the stage's own watcher


def send_refusal(
    *,
    emergency_stop: bool,
    watcher_down: str | None,
    lease_held: bool,
    nats_connected: bool,
    rpc_down: str | None,
) -> str | None:
    """Why nothing may be sent now (the first reason, in this order), or None."""
    if emergency_stop:
        return "emergency stop active"
    if watcher_down:
        return f"{watcher_down}: emergency stop state unknown"
    if not lease_held:
        return "submit lease not held"
    if not nats_connected:
        return "NATS disconnected: control state unknown"
    return rpc_down


class SubmitHandlers:
    """Holds the running submitter (None until active) and answers for it: health checks,
    the send gate, control changes, withdrawals and bundles."""

    def __init__(self, stage: Stage, control: ControlState, lease: Leases) -> None:
        self.stage = stage
        self.rt = stage.rt
        self.control = control
        self.lease = lease
        self.submitter: Submitter | None = None
        self.guard = ControlGuard(
            lambda: stage.watch_control(control, self.on_control, CONTROL_KEYS), self.rt.stop
        )
        self.guarding = False
        self.rt.add_check("lease", self.lease_check)
        self.rt.add_check("emergency_stop", self.stop_check)
        self.rt.add_check("dry_run", lambda: Check(True, self.rt.settings.submit.dry_run, False))

    def lease_check(self) -> Check:
        lease = self.lease
        return Check(True, "active" if lease.held() else f"standby (holder {lease.holder})")

    def stop_check(self) -> Check:
        trip = self.submitter.tripped if self.submitter is not None else None
        if trip is not None:  # not critical: the process is healthy, it just must not send
            return Check(False, f"TRIPPED: {trip.reason}", critical=False)
        return Check(True, "ACTIVE: nothing is sent" if self.control.emergency_stop else "off")

    def watcher_check(self) -> Check:
        return Check(not self.guard.down, self.guard.down or "running")

    def nonces_check(self) -> Check:
        assert self.submitter is not None
        lanes = [
            {  # the address a lane signs as (what setTrader names), never its key
                "address": lane.address,
                "next": lane.nonces.next_nonce,
                "in_flight": len(lane.nonces.in_flight),
            }
            for lane in self.submitter.lanes
        ]
        return Check(True, lanes[0] if len(lanes) == 1 else lanes)

    def send_blocker(self) -> str | None:
        return send_refusal(
            emergency_stop=self.control.emergency_stop,
            watcher_down=self.guard.down if self.guarding else None,
            lease_held=self.lease.held(),
            nats_connected=self.rt.bus.is_connected,
            rpc_down=self.stage.rpc.all_down_reason(),
        )

    def start_guard(self) -> None:
        """Watch the emergency stop and nonce resets, and refuse sends while the watcher is
        down (ControlGuard)."""
        self.guarding = True
        self.stage.spawn(self.guard.supervise(), "control-guard", drain=True)
        self.rt.add_check("control_watcher", self.watcher_check)

    async def publish(self, outcome: Outcome, trace: str, seen_ns: int, version: str) -> None:
        await self.rt.bus.publish(  # `version`: re-booked after a reorg, or corrected
            subjects.outcomes(self.rt.chain_id),
            outcome,
            msg_id=f"outcome:{outcome.bundle_id}{version}",
            trace=trace or outcome.bundle_id,
            seen_ns=seen_ns,
        )

    async def on_control(self, name: str, state: ControlState) -> None:
        submitter = self.submitter
        if submitter is None:
            return
        if name == EMERGENCY_STOP:
            submitter.stop_key_written(state.revisions.get(EMERGENCY_STOP, 0))
            metrics.EMERGENCY_STOP.set(1 if state.emergency_stop else 0)
            log.warning("emergency stop", extra={"fields": {"active": state.emergency_stop}})
        elif name == NONCE_RESET and state.nonce_reset:
            await submitter.sync_nonces()

    async def on_withdrawal(self, withdrawal: Withdrawal) -> None:
        assert self.submitter is not None
        await self.submitter.withdraw(withdrawal.opportunity_id, withdrawal.reason)

    async def on_bundle(self, env: Envelope[Bundle]) -> None:
        assert self.submitter is not None
        await self.submitter.handle(env.message, env.trace, env.seen_ns, stored_ns=env.stored_ns)
        metrics.TRANSACTIONS_PROCESSED.labels(stage="submit").inc()
