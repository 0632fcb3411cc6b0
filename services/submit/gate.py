"""Every check of one bundle in its turn at the gate (turns.py), up to its nonce: seen before,
the chain head, a stale block, the pure gate (decide, with the loss limits), its lane
(routing), a withdrawal, the stop, the RPC budget, a late head, the in-flight limit.

A bundle still before the gate when submit stops (SIGTERM, `--shutdown-graceful`) is handed
back unsigned (`Retryable(error=False)`: nak'd, redelivered to the next submit, which checks it
again; on its last allowed delivery a copy is stored for it instead, mev_common.hand_back): an
operator stopping the bot starts no new trade, and a bundle refused only because this process
stops (its lease released) is not lost to the next one. The check is the last before the nonce
is taken, with no `await` after it until the broadcast.

A lane whose broadcast awaits its answer is returned rather than a nonce taken on it: a refused
send gives its nonce back, and a later nonce taken meanwhile would leave a gap no tx of ours
fills (the caller waits for the answer, then checks everything again).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mev_common import metrics
from mev_common.bus import Retryable
from mev_common.chain import budget
from mev_common.chain.jsonrpc import RpcError
from mev_common.messages import Bundle

from services.submit import routing
from services.submit.budget_room import may_send
from services.submit.decide import ChainHead, Refusal, SendPlan, decide, not_sent
from services.submit.lanes import Lane
from services.submit.nonces import NoNonceFree

if TYPE_CHECKING:
    from services.submit.submitter import Submitter

# A handed-back bundle's redelivery delay: past the stopping process's last pull request (its
# fetch timeout, 0.5 s, plus 1 s grace: mev_common.pull), so it goes to the next submit rather
# than back to this one (each delivery counts toward the consumer's max_deliver; the last one's
# hand-back stores a copy once those pulls ended instead of a nak).
HAND_BACK_DELAY_S = 2.0


async def check(
    sub: Submitter, bundle: Bundle, trace: str, seen_ns: int
) -> tuple[Lane, Bundle, SendPlan, int] | Lane | None:
    """Every check of one bundle: its lane, the bundle and plan as sent from it and the
    nonce taken; or a Lane whose broadcast awaits its answer (wait, then check again); or
    None when it is booked (or needs nothing)."""
    booked = sub.ledger.outcome_for(bundle.id)
    if booked is not None:  # seen before: publish again (deduped by msg id downstream)
        await sub.publish(booked, trace, seen_ns, "")
        sub.ledger.mark_published(bundle.id)
        return None
    if sub.ledger.trade_for(bundle.id) is not None:
        return None  # its tx is on the wire: tracking books and publishes its outcome
    hand_back_if_stopping(sub)
    if sub.head.number < 0 or not sub.nonces.synced:
        raise Retryable("no chain head or nonces yet", delay_s=0.5)
    if time.monotonic() - sub.head_checked_at > sub.head_max_age_s:
        try:  # an old head view (RPC was down) would pass bundles whose deadline is gone
            await sub.fetch_head()
        except RpcError as exc:
            raise Retryable(f"head refresh: {exc}", delay_s=0.5) from exc
    if bundle.block_number > sub.head.number:  # the chain's word on it, not the bundle's
        try:  # first: the head read brings the block's hash for the check below
            await sub.fetch_head()
        except RpcError as exc:
            raise Retryable(f"chain head not readable: {exc}", delay_s=0.5) from exc
    try:  # a leftover of another chain (or a reorged block) never reaches the gate
        stale = await sub.blocks.stale_reason(
            bundle.block_number, bundle.block_hash, sub.head.number
        )
    except RpcError as exc:
        raise Retryable(f"block check: {exc}", delay_s=0.5) from exc
    if stale is not None:
        sub.book(bundle, not_sent(bundle, stale), trace, seen_ns)
        return None
    head = ChainHead(sub.head.number, sub.head.next_base_fee)
    plan = decide(bundle, sub.policy, head, sub.safety.spend(sub.native_token))
    reason = plan.reason if isinstance(plan, Refusal) else None
    if isinstance(plan, Refusal) and plan.trip:
        sub.trip(plan.reason)
    lane: Lane | None = None
    if isinstance(plan, SendPlan):  # on a trader's lane: that lane's gas and net
        routed = await routing.route_priced(sub, bundle, plan, head)
        reason = routed if isinstance(routed, str) else None
        lane, bundle, plan = (None, bundle, plan) if isinstance(routed, str) else routed
    if reason is None and bundle.id in sub.withdrawn:
        reason = f"withdrawn by detect: {sub.withdrawn[bundle.id]}"
    if reason is None and lane is not None and lane.unanswered is not None:
        return lane  # chosen only when no lane it may go on is free (lanes.choose_lane)
    await sub.booked.wait()  # a settled trade's booking may trip the stop: not before it
    hand_back_if_stopping(sub)  # no await from here to the broadcast
    if reason is None and not sub.cfg.dry_run:
        reason = sub.blocked()
    if reason is None and not sub.cfg.dry_run and not may_send(budget.process_budget()):
        # past the share (less the room tracking keeps), the opportunity is let go
        # (counted) rather than the RPC limit broken or a sent trade left unsettled
        metrics.RPC_BUDGET_SKIPS.labels(what="submit_send").inc()
        reason = "RPC call budget spent (chain.rpc_budget_per_minute share)"
    if reason is None and (
        reason := sub.production.late_reason(bundle.block_number, time.time_ns())
    ):
        metrics.LATE_HEAD_REFUSALS.inc()
    if reason is None and lane is not None:
        try:
            nonce = lane.nonces.take()
        except NoNonceFree as exc:
            reason = f"in-flight limit: {exc}"
    if reason is not None or lane is None or not isinstance(plan, SendPlan):
        sub.book(bundle, not_sent(bundle, reason or "refused"), trace, seen_ns)
        return None
    return lane, bundle, plan, nonce


def hand_back_if_stopping(sub: Submitter) -> None:
    """Raise `Retryable` (the consumer naks: redelivered) once submit is stopping."""
    if sub.stop.is_set():
        raise Retryable(
            "submit is stopping: handed back unsigned, for the next submit",
            delay_s=HAND_BACK_DELAY_S,
            error=False,  # not a failure: no error counted, no warning logged
        )
