"""The submit stage's logic with its I/O: gate, price, sign, record, broadcast, track, book.

Order is the money-safety argument. A bundle is checked and priced by the pure gate (decide,
with the loss limits), given a nonce and signed; the signed tx is committed to the ledger
BEFORE it is broadcast, so after a crash at any point the ledger knows every tx that may be on
the wire and nothing is ever signed twice for one bundle. There is no `await` between the last
emergency-stop check and the broadcast call, so a stop applied by the control watcher is always
seen by the next send. All of that runs in the bundle's turn at the gate (turns.py: one bundle
at a time, backruns first; the checks in gate.py); the broadcast's answer is awaited after the
turn, so the next bundle is gated and sent meanwhile on another lane (a lane whose broadcast
awaits its answer takes no nonce: a refusal gives its nonce back with none taken behind it).
The head (the newer of submit's RPC reads and ingest's block messages,
bounded against forged ones) lives in `chain_view`, the Submitter's base.
Tracking and settling sent trades live in `settlement`, cancels in `cancels`; a trade's
conflicts with ours and its nonce lane (one sender account of `keys.lanes`) in `routing`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from mev_common import metrics
from mev_common.chain.jsonrpc import RpcError
from mev_common.messages import Bundle, Outcome, bundle_id_for, trigger_kind
from mev_common.runtime import RefuseToStart
from mev_common.settings import Settings

from services.submit import cancels, gate, settlement
from services.submit.chain_view import ChainView, Spawn, count_at_head
from services.submit.conflicts import PoolClaims, bundle_pools
from services.submit.decide import Policy, not_sent
from services.submit.fees import Fees
from services.submit.keys import Signer
from services.submit.lanes import Lane, Lanes, UnknownSender
from services.submit.ledger_records import Settled, TxRecord
from services.submit.limits import kind_of
from services.submit.ports import ChainPort, LedgerPort, SafetyPort
from services.submit.sender import SendResult, Verdict
from services.submit.turns import Turns

log = logging.getLogger("mev.submit")

# (outcome, trace, seen_ns, version): the message id's tail, PendingPublish.version ("" for
# an outcome as first booked; a reorg's re-booking or a correction is a new message id)
Publish = Callable[[Outcome, str, int, str], Awaitable[None]]
# Called once a trade is broadcast and recorded, before the bundle is acked. Only tests pass
# one (tests/support/submit_kill.py kills the process there to prove exactly-once).
AfterSend = Callable[[TxRecord], None]
SUBMIT_HOPS = ("submit_arrive", "submit_gate", "submit_sign", "submit_record")


@dataclass(frozen=True)
class Sending:
    """A signed, committed trade whose broadcast was started: its answer is awaited after the
    bundle's turn at the gate."""

    bundle: Bundle
    record: TxRecord
    lane: Lane
    answer: asyncio.Future[SendResult]


class Submitter(ChainView):
    def __init__(
        self,
        *,
        settings: Settings,
        ledger: LedgerPort,
        pool: ChainPort,
        signer: Signer,
        policy: Policy,
        safety: SafetyPort,
        publish: Publish,
        send_blocker: Callable[[], str | None],
        native_token: str | None = None,
        control_revision: Callable[[], int] = lambda: 0,
        after_send: AfterSend | None = None,
        lane_signers: Sequence[Signer] = (),
        spawn: Spawn | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        super().__init__(settings, pool, spawn)
        self.settings = settings
        self.cfg = settings.submit
        self.chain_id = settings.chain.chain_id
        self.ledger = ledger
        self.signer = signer
        self.policy = policy
        self.executor = policy.executor
        self.safety = safety
        self.native_token = native_token  # profit in it counts against gas in the loss limit
        self.publish = publish
        self.send_blocker = send_blocker  # why nothing may be sent now (emergency stop, ...)
        self.control_revision = control_revision  # emergency_stop's revision, for trips
        self.after_send = after_send
        # set at SIGTERM (or --shutdown-graceful): no new trade starts, a bundle not yet past
        # the gate is handed back unsigned (gate.check), what is on the wire finishes
        self.stop = stop or asyncio.Event()
        self.tripped = safety.active()  # a loss limit tripped (in this run or before)
        if self.tripped is not None:
            metrics.SAFETY_TRIP.labels(reason=kind_of(self.tripped.reason)).set(1)
        # lane 0 is `signer` (keys.path), then the extra lanes' keys (keys.lanes)
        self.lanes = Lanes([signer, *lane_signers], self.cfg.max_in_flight)
        self.nonces = self.lanes[0].nonces
        self.sent = 0
        self.claims = PoolClaims()
        self.turns = Turns()  # the gate, one bundle at a time (turns.py)
        self.publishing = asyncio.Lock()
        self.track_lock = asyncio.Lock()
        self.booked = asyncio.Event()  # clear while settlement._settle books off the loop
        self.booked.set()
        self.tracked_from: dict[int, int] = {}  # lane -> our head as its last pass began
        self.track_wake = asyncio.Event()  # set by block_feed.hint_heads: track before bundles
        self.withdrawn: dict[str, str] = {}  # bundle id -> why detect withdrew it
        self.pays_at_head: dict[str, int] = {}  # late block trade -> head it still paid at
        for tx in ledger.unresolved():  # trades of a previous run still on the wire
            lane = self.lane_of(tx).index
            pending = ledger.bundle(tx.bundle_id) if tx.kind == "trade" else None
            if pending is not None:
                pools, tip = bundle_pools(pending), tx.max_priority_fee_per_gas
                self.claims.claim(pending.id, pools, pending.block_number, tip, lane)

    def lane_of(self, tx: TxRecord) -> Lane:
        try:
            return self.lanes.of(tx.sender)
        except UnknownSender as exc:
            raise RefuseToStart(str(exc)) from None

    async def sync_nonces(self) -> None:
        """Each lane: chain pending count plus every nonce its unresolved txs hold (start,
        nonce_reset, a refused send), and never below the nonces our receipts in blocks the
        answering node has not reached show mined (a lagging node's count: a backrun sent to
        its victim's node alone, just mined). Receipts in blocks it has reached do not count:
        there its count is the chain's word (a reorg may have taken them, unseen by us yet).
        On a chain that serves state at `latest` only (HyperEVM) the mined count: our
        unresolved txs, recorded before they are sent, cover the rest."""
        tag = "latest" if self.settings.chain.latest_state_only else "pending"
        for lane in self.lanes:
            pending, node_head = await count_at_head(self.pool, lane.address, tag)
            # read after the count, with no await before `sync`: a nonce a bundle's turn took
            # (and committed) while the count was asked is unresolved here, never handed again
            unresolved = self.ledger.unresolved()
            mined = self.ledger.mined_count(lane.address, lane.index == 0, node_head)
            held = {t.nonce for t in unresolved if self.lane_of(t) is lane}
            lane.nonces.sync(pending, held, mined)
            fields = {"lane": lane.index, "chain_pending": pending, "node_head": node_head,
                      "mined_beyond": mined, "next": lane.nonces.next_nonce}  # fmt: skip
            log.info("nonces synced", extra={"fields": fields})

    # -- one bundle ------------------------------------------------------------------------------
    async def handle(self, bundle: Bundle, trace: str, seen_ns: int, stored_ns: int = 0) -> None:
        """Gate, sign, record and broadcast one bundle, or book why not. The gate runs in this
        bundle's turn (turns.py: one at a time, backruns first); the broadcast's answer is
        awaited after it, so the next bundle is gated meanwhile (on another lane: a lane whose
        broadcast awaits its answer takes no nonce). `stored_ns`: when the bundle stream
        stored it (the `submit_wait` hop starts there, and ends as its turn begins)."""
        async with self.turns.turn(bundle):
            sending = await self._gate_and_sign(bundle, trace, seen_ns, stored_ns)
        if sending is None:
            await self.publish_pending()  # what the turn booked, off the gate
            return
        try:
            result = await sending.answer
        except BaseException:  # no verdict (shutdown): as UNKNOWN, the tx stays signed and
            sending.lane.answer()  # its nonce held, for tracking to settle
            raise
        await self._after_send(sending, result, trace, seen_ns)

    async def _gate_and_sign(
        self, bundle: Bundle, trace: str, seen_ns: int, stored_ns: int
    ) -> Sending | None:
        """The bundle's turn: its checks until it is booked (None), or signed, committed and
        its broadcast started (no `await` between the last emergency-stop check and that)."""
        arrived_ns = time.time_ns()
        while True:
            gated = await gate.check(self, bundle, trace, seen_ns)
            if not isinstance(gated, Lane):
                break
            await gated.answered.wait()  # its nonce may come back: then every check again
        if gated is None:
            return None
        lane, bundle, plan, nonce = gated
        fees = Fees(plan.max_fee_per_gas, plan.max_priority_fee_per_gas)
        gated_ns = time.time_ns()
        tx = plan.tx(nonce)
        raw, tx_hash = lane.signer.sign(tx)
        signed_ns = time.time_ns()
        if self.cfg.dry_run:
            lane.nonces.give_back(nonce)
            self._book_dry_run(bundle, tx_hash, nonce, fees, trace, seen_ns)
            return None
        record = TxRecord.signed(
            tx,
            raw,
            tx_hash,
            bundle_id=bundle.id,
            kind="trade",
            deadline_block=bundle.deadline_block,
            sender=lane.address,
        )
        if not self.ledger.record_signed(bundle, record, trace, seen_ns):
            lane.nonces.give_back(nonce)  # another delivery or submitter holds this bundle
            return None
        tip = fees.max_priority_fee_per_gas
        self.claims.claim(bundle.id, plan.pools, bundle.block_number, tip, lane.index)
        hops = (seen_ns, arrived_ns, gated_ns, signed_ns, time.time_ns())
        for name, a, b in zip(SUBMIT_HOPS, hops, hops[1:], strict=False):
            metrics.HOP_LATENCY.labels(hop=name).observe(max(0.0, (b - a) / 1e9))
        if stored_ns:  # submit's own part of submit_arrive: the pull and the bundles before it
            wait = max(0.0, (arrived_ns - stored_ns) / 1e9)
            metrics.HOP_LATENCY.labels(hop="submit_wait").observe(wait)
            if bundle.victim_tx_hash is not None:  # a backrun's own, beside the block bundles'
                metrics.HOP_LATENCY.labels(hop="submit_wait_backrun").observe(wait)
        trigger = trigger_kind(bundle.victim_tx_hash)
        lane.sending(record.hash)
        answer = asyncio.ensure_future(
            self.pool.send_raw(raw, seen_ns, trigger, only=bundle.victim_seen_on)
        )
        # one loop pass: the send's first step writes its request (or starts one task per
        # endpoint, which write before anything the next turn wakes)
        await asyncio.sleep(0)
        return Sending(bundle, record, lane, answer)

    async def _after_send(
        self, sending: Sending, result: SendResult, trace: str, seen_ns: int
    ) -> None:
        """The broadcast's answer, booked: a refusal gives the nonce back (no later nonce is
        taken on its lane meanwhile: Lane.unanswered) and books the bundle not_sent; then the
        lane is free for the next trade."""
        bundle, record, lane = sending.bundle, sending.record, sending.lane
        fields = {
            "bundle": bundle.id,
            "tx": record.hash,
            "nonce": record.nonce,
            "lane": lane.index,
            "max_fee_per_gas": record.max_fee_per_gas,
            "priority_fee": record.max_priority_fee_per_gas,
            "verdict": result.verdict.value,
        }
        refused = result.verdict is Verdict.REJECTED
        try:  # the lane is answered whatever happens here: a later bundle waits for it
            if refused:
                log.warning(
                    "tx refused by every endpoint",
                    extra={"fields": {**fields, "why": result.reason}},
                )
                why = f"refused by every RPC endpoint: {result.reason}"
                settled = Settled(bundle, not_sent(bundle, why), {record.hash: "rejected"})
                self.ledger.resolve(settled)
                lane.nonces.give_back(record.nonce)
                self.claims.release(bundle.id, None)
            elif result.verdict is Verdict.ACCEPTED:
                self.ledger.mark_sent(record.hash)
        finally:
            lane.answer()
        if refused:
            metrics.BUNDLES.labels(strategy=bundle.strategy, outcome="not_sent").inc()
            await self.publish_pending()
            try:
                await self.sync_nonces()
            except RpcError as exc:
                log.warning("nonce resync failed", extra={"fields": {"error": str(exc)}})
            return
        self.sent += 1
        log.info("tx sent", extra={"fields": {**fields, "endpoints": result.accepted_by}})
        if self.after_send is not None:
            self.after_send(record)

    # -- safety trips ------------------------------------------------------------------------
    def blocked(self) -> str | None:
        """Why nothing may leave this process now: a tripped limit, then the service's view."""
        if self.tripped is not None:
            return f"emergency stop tripped: {self.tripped.reason}"
        return self.send_blocker()

    def trip(self, reason: str) -> None:
        """A loss limit stops every send (trades and cancels) until the operator clears it."""
        if self.tripped is not None:
            return
        self.tripped = self.safety.trip(reason, self.control_revision())
        metrics.SAFETY_TRIP.labels(reason=kind_of(self.tripped.reason)).set(1)
        log.error("emergency stop tripped", extra={"fields": {"reason": self.tripped.reason}})

    def stop_key_written(self, revision: int) -> None:
        """The operator wrote the emergency-stop key: a trip older than that write is cleared."""
        cleared = self.safety.clear_if_rewritten(revision)
        if cleared is None:
            return
        self.tripped = None
        metrics.SAFETY_TRIP.labels(reason=kind_of(cleared.reason)).set(0)
        log.warning(
            "emergency stop trip cleared by the operator",
            extra={"fields": {"reason": cleared.reason, "revision": revision}},
        )

    def _book_dry_run(
        self, bundle: Bundle, tx_hash: str, nonce: int, fees: Fees, trace: str, seen_ns: int
    ) -> None:
        reason = (
            f"dry run: would send {tx_hash} nonce {nonce} to {bundle.to} gas {bundle.gas_limit} "
            f"max_fee {fees.max_fee_per_gas} priority {fees.max_priority_fee_per_gas}, "
            f"would-be profit {bundle.simulated_profit} (net {bundle.net_profit_wei} wei)"
        )
        log.info(
            "dry run: would send",
            extra={
                "fields": {
                    "bundle": bundle.id,
                    "strategy": bundle.strategy,
                    "tx": tx_hash,
                    "nonce": nonce,
                    "max_fee_per_gas": fees.max_fee_per_gas,
                    "priority_fee": fees.max_priority_fee_per_gas,
                    "would_be_profit": str(bundle.simulated_profit),
                    "net_profit_wei": str(bundle.net_profit_wei),
                }
            },
        )
        outcome = Outcome(
            bundle_id=bundle.id,
            chain_id=bundle.chain_id,
            strategy=bundle.strategy,
            status="dry_run",
            realized_profit=bundle.simulated_profit,
            reason=reason,
        )
        self.book(bundle, outcome, trace, seen_ns)

    def book(self, bundle: Bundle, outcome: Outcome, trace: str, seen_ns: int) -> None:
        """Book a bundle that is not sent; `publish_pending` publishes it (after the turn)."""
        if outcome.status == "not_sent":
            log.info(
                "bundle not sent",
                extra={"fields": {"bundle": bundle.id, "reason": outcome.reason}},
            )
        self.ledger.book(bundle, outcome, trace, seen_ns)
        metrics.BUNDLES.labels(strategy=bundle.strategy, outcome=outcome.status).inc()

    async def publish_pending(self) -> None:
        """Publish every booked outcome not yet published (also those of a previous run), one
        caller at a time (several bundles' handlers may call at once)."""
        async with self.publishing:
            for item in self.ledger.unpublished():
                await self.publish(item.outcome, item.trace, item.seen_ns, item.version)
                self.ledger.mark_published(item.outcome.bundle_id, item.corrections)

    # -- tracking (services/submit/settlement.py) and cancels (services/submit/cancels.py) -------
    async def track_once(self, lanes: Collection[int] | None = None) -> int:
        """One pass over every unresolved tx (of `lanes` only, when given); returns how many
        trades were settled. Passes run one at a time (the tracking loop and `routing.route`
        both call this)."""
        async with self.track_lock:
            return await settlement.track_once(self, lanes)

    async def withdraw(self, opportunity_id: str, reason: str) -> None:
        """Detect says this backrun will revert: never send it; if it is out, cancel it (a
        21k-gas self-transfer on its nonce instead of a ~200k-gas revert)."""
        await self.withdraw_bundle(bundle_id_for(opportunity_id), reason)

    async def withdraw_bundle(self, bundle_id: str, reason: str) -> None:
        if bundle_id in self.withdrawn:
            return  # only the first withdrawal of a bundle counts: repeats cancel nothing
        self.withdrawn[bundle_id] = reason
        while len(self.withdrawn) > 10_000:
            self.withdrawn.pop(next(iter(self.withdrawn)))
        trade = self.ledger.trade_for(bundle_id)
        if trade is None or trade.state not in ("signed", "sent"):
            return
        txs = self.ledger.txs_of(bundle_id)
        await self._cancel(trade, txs[-1] if txs else trade, why=f"withdrawn: {reason}")
        await cancels.cancel_stacked(self, bundle_id)  # what stands on it (stack_cancel.py)

    async def _cancel(self, trade: TxRecord, last: TxRecord, why: str = "past deadline") -> None:
        await cancels.send_cancel(self, trade, last, why)
