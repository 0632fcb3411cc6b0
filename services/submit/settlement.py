"""Tracking sent trades until they settle, and booking how each one ended.

Each pass reads the chain (nonce, receipts, the node's pool) and asks the pure `tracking`
module what to do with every trade: wait, cancel, or settle. Settling books the realized
profit from the receipt's transfers, frees the nonce and the pool claims, and checks the loss
limits, so a trade that lost money trips them before the next bundle is signed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.jsonrpc import RpcError
from mev_common.messages import Bundle, Outcome

from services.submit import late_blocks, late_victims
from services.submit.cancels import cancel_stacked, send_cancel
from services.submit.lanes import Lane
from services.submit.ledger_records import Settled, TxRecord
from services.submit.limits import trip_reason
from services.submit.orphan_cancels import resolve_orphans
from services.submit.profit import realized_from_receipt
from services.submit.reorg import reopen_reorged
from services.submit.tracking import (
    Cancel,
    CheckPool,
    Settle,
    Step,
    Wait,
    after_pool_check,
    next_step,
)

if TYPE_CHECKING:
    from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")
RECEIPT_LAG_S = 0.25  # how long a node may count a mined nonce before serving its receipt
# when, within it, the receipts are asked again: a pass woken by the block message (loops.py)
# meets the lag most, and the bundles of that block wait for the pass (routing.settle_through)
RECEIPT_ASKS_S = (0.02, 0.08, RECEIPT_LAG_S)


async def track_once(sub: Submitter, lanes: Collection[int] | None = None) -> int:
    """One pass over every unresolved tx, lane by lane (only `lanes`, when given); returns how
    many trades were settled."""
    began = sub.head.number  # receipts read below are of a node at this head or later
    await reopen_reorged(sub.reorgs, sub.ledger, sub.lane_of, sub.pool, sub.blocks, sub.head.number)
    settled = 0
    for lane in sub.lanes:
        if lanes is None or lane.index in lanes:
            settled += await _track_lane(sub, lane)
            sub.tracked_from[lane.index] = began
    return settled


async def _track_lane(sub: Submitter, lane: Lane) -> int:
    """One lane's unresolved txs against that lane's nonce count."""
    txs = [t for t in sub.ledger.unresolved() if sub.lane_of(t) is lane]
    if not txs:
        return 0
    bundles = lane.bundles.of(sub.ledger, txs)  # read from SQLite only for new trades
    backruns = late_victims.in_flight(sub, txs, bundles)  # victims' receipts BEFORE our nonce
    victims_mined = await late_victims.victims_mined(sub, backruns)
    mined_nonce = int(await sub.pool.call("eth_getTransactionCount", [lane.address, "latest"]), 16)
    # a tx whose nonce the chain has not counted yet cannot have a receipt: ask only for the
    # others (one call per tx instead of one per tx per pass under an RPC budget)
    mined = [t for t in txs if t.nonce < mined_nonce]
    replies = await sub.pool.call_batch([("eth_getTransactionReceipt", [t.hash]) for t in mined])
    receipts: dict[str, dict[str, Any] | None] = {t.hash: None for t in txs}
    receipts.update(
        {t.hash: (r if isinstance(r, dict) else None) for t, r in zip(mined, replies, strict=True)}
    )
    groups: dict[str, list[TxRecord]] = {}
    for tx in txs:
        groups.setdefault(tx.bundle_id, []).append(tx)
    settled = 0
    cancelled: set[str] = set()  # trades cancelled in this pass: not stepped or withdrawn again
    booked: set[str] = set()  # trades settled in this pass
    orphans: list[TxRecord] = []  # cancels whose trade is settled (orphan_cancels.py)
    for bundle_id, group in groups.items():
        if bundle_id in cancelled:
            continue
        trade = next((t for t in group if t.kind == "trade"), None)
        cancels = [t for t in group if t.kind == "cancel"]
        if trade is None:
            orphans.extend(cancels)
            continue
        step = next_step(
            trade,
            cancels,
            receipts,
            head=sub.head.number,
            mined_nonce=mined_nonce,
            now=time.time(),
            receipt_timeout_s=sub.cfg.receipt_timeout_s,
            withdrawn=bundle_id in sub.withdrawn,
            why=sub.withdrawn.get(bundle_id, ""),
        )
        if isinstance(step, CheckPool):
            held = {t.nonce for t in txs}
            step = await _check_pool(sub, trade, cancels, mined_nonce, held)
        if isinstance(step, Settle) and step.status == "replaced" and step.mined is None:
            step = await _receipt_lag(sub, trade, cancels, mined_nonce, step)
        if isinstance(step, Settle):
            await _settle(sub, bundle_id, trade, cancels, step)
            settled += 1
            booked.add(bundle_id)
            if step.status != "included":  # what stands on it meets another state
                cancelled.update(await cancel_stacked(sub, bundle_id, mined_nonce))
        elif isinstance(step, Cancel):
            await send_cancel(sub, trade, step.last)
            cancelled.add(bundle_id)
        elif not isinstance(step, Wait):  # pragma: no cover - exhaustive
            raise AssertionError(step)
    if orphans:
        await resolve_orphans(sub, lane, orphans, receipts, mined_nonce, RECEIPT_ASKS_S)
    if settled:
        lane.nonces.confirmed_up_to(mined_nonce)
    backruns = [b for b in backruns if b.bundle_id not in cancelled]
    await late_victims.withdraw_orphans(sub, backruns, victims_mined, mined_nonce)
    await _withdraw_late_block_trades(sub, lane, txs, bundles, cancelled | booked, mined_nonce)
    return settled


async def _withdraw_late_block_trades(
    sub: Submitter,
    lane: Lane,
    txs: list[TxRecord],
    bundles: dict[str, Bundle],
    done: set[str],
    mined_nonce: int,
) -> None:
    """Our block trades that missed their block (late_blocks.py): one batched eth_call at the
    head for those not asked at this head yet; those that would revert are withdrawn. No such
    trade (the common case): no call."""
    out = done | set(sub.withdrawn) | {t.bundle_id for t in txs if t.kind == "cancel"}
    pairs = [
        (t, b)
        for t in txs
        if t.kind == "trade" and t.bundle_id not in out
        and (b := bundles.get(t.bundle_id)) is not None
    ]  # fmt: skip
    head = sub.head.number
    late = late_blocks.late_block_trades(
        pairs, sender=lane.address, head=head, mined_nonce=mined_nonce, pays_at=sub.pays_at_head
    )
    if not late:
        return
    if not budget.process_budget().allows(len(late) + 1):  # no keep_free: it saves gas
        metrics.RPC_BUDGET_SKIPS.labels(what="submit_late_blocks").inc()
        return
    try:
        replies = await sub.pool.call_batch([("eth_call", [t.call, "latest"]) for t in late])
    except RpcError as exc:
        log.warning("late block trades not checked", extra={"fields": {"error": str(exc)}})
        return
    verdicts = late_blocks.judge(late, replies, head)
    for bundle_id in verdicts.pays:
        sub.pays_at_head[bundle_id] = head
        log.info("late block trade still pays at the head: left to land",
                 extra={"fields": {"bundle": bundle_id, "head": head}})  # fmt: skip
    while len(sub.pays_at_head) > 1_000:
        sub.pays_at_head.pop(next(iter(sub.pays_at_head)))
    if not verdicts.withdraw:
        return
    try:  # after the calls: a trade mined before its call was run on its own result
        count = int(await sub.pool.call("eth_getTransactionCount", [lane.address, "latest"]), 16)
    except RpcError as exc:  # asked again next pass
        log.warning("late block trades not checked", extra={"fields": {"error": str(exc)}})
        return
    for bundle_id, why in late_blocks.still_unmined(verdicts.withdraw, count):
        log.warning("late block trade would revert at the head: withdrawn",
                    extra={"fields": {"bundle": bundle_id, "why": why}})  # fmt: skip
        await sub.withdraw_bundle(bundle_id, why)


async def _receipt_lag(
    sub: Submitter, trade: TxRecord, cancels: list[TxRecord], mined_nonce: int, step: Settle
) -> Step:
    """Our nonce is counted but none of our txs has a receipt: a node counts a mined nonce a
    moment before it serves the receipt (anvil: an e2e run booked a landed trade of ours as
    "replaced", its profit missing from the ledger). Ask again until RECEIPT_LAG_S has passed
    (RECEIPT_ASKS_S: a single ask at 0.25 s held the pass, and the bundles waiting on it, that
    long even when the receipt was served a few ms later)."""
    ours, waited = [trade, *cancels], 0.0
    receipts: dict[str, dict[str, Any] | None] = {}
    for at in RECEIPT_ASKS_S:
        await asyncio.sleep(at - waited)
        waited = at
        calls = [("eth_getTransactionReceipt", [t.hash]) for t in ours]
        replies = await sub.pool.call_batch(calls)
        receipts = {
            t.hash: r if isinstance(r, dict) else None for t, r in zip(ours, replies, strict=True)
        }
        if any(receipts.values()):
            break
    if not any(receipts.values()):
        return step
    return next_step(trade, cancels, receipts, head=sub.head.number, mined_nonce=mined_nonce,
                     now=time.time(), receipt_timeout_s=sub.cfg.receipt_timeout_s)  # fmt: skip


async def _check_pool(
    sub: Submitter, trade: TxRecord, cancels: list[TxRecord], mined_nonce: int, held: set[int]
) -> Settle | Cancel:
    known = await sub.pool.held_anywhere([t.hash for t in [trade, *cancels]])
    return after_pool_check(
        trade,
        cancels,
        known=known,
        mined_nonce=mined_nonce,
        held_nonces=held,
        receipt_timeout_s=sub.cfg.receipt_timeout_s,
    )


async def _settle(
    sub: Submitter, bundle_id: str, trade: TxRecord, cancels: list[TxRecord], step: Settle
) -> None:
    bundle = sub.ledger.bundle(bundle_id)
    assert bundle is not None, f"tx {trade.hash} without its bundle row"
    profit, gas_used, price, gas_cost, reason = 0, 0, 0, 0, step.reason
    receipt_row: dict[str, object] | None = None
    block_number: int | None = None
    if step.receipt is not None and step.mined is not None:
        token = bundle.profit_token if step.mined.kind == "trade" else None
        realized = realized_from_receipt(step.receipt, sub.executor, token)
        profit, gas_used = realized.profit, realized.gas_used
        price, gas_cost = realized.effective_gas_price, realized.gas_cost
        if realized.event_profit is not None and realized.event_profit != realized.profit:
            reason = (
                f"{reason}; Arbitrage event says {realized.event_profit}, transfers "
                f"{realized.profit}: booked the transfers"
            ).lstrip("; ")
            metrics.ERRORS.labels(kind="profit_mismatch").inc()
        block_number = int(step.receipt["blockNumber"], 16)
        receipt_row = {
            "tx_hash": step.mined.hash,
            "block_number": block_number,
            "block_hash": step.receipt["blockHash"],
            "status": int(step.receipt.get("status", "0x0"), 16),
            "gas_used": gas_used,
            "effective_gas_price": str(price),
            "gas_cost": str(gas_cost),
            "realized_profit": str(profit),
            "event_profit": None if realized.event_profit is None else str(realized.event_profit),
        }
    states = {t.hash: "replaced" for t in [trade, *cancels]}
    if step.mined is not None:
        states[step.mined.hash] = "mined" if step.status != "reverted" else "reverted"
    elif step.status == "dropped":
        states = {t.hash: "dropped" for t in [trade, *cancels]}
    outcome = Outcome(
        bundle_id=bundle.id,
        chain_id=bundle.chain_id,
        strategy=bundle.strategy,
        status=step.status,
        tx_hash=step.mined.hash if step.mined else trade.hash,
        block_number=block_number,
        gas_used=gas_used,
        effective_gas_price=price,
        realized_profit=profit,
        reason=reason,
    )
    sub.booked.clear()  # the gate waits for this booking and the stop it may trip
    try:
        await sub.ledger.resolve_off_loop(Settled(bundle, outcome, states, receipt_row, gas_cost))
        sub.lane_of(trade).nonces.release(trade.nonce)
        landed = (
            outcome.block_number if step.status == "included" and step.mined is not None else None
        )
        sub.claims.release(bundle.id, landed if step.mined and step.mined.kind == "trade" else None)
        metrics.BUNDLES.labels(strategy=bundle.strategy, outcome=step.status).inc()
        metrics.GAS_SPENT_WEI.labels(strategy=bundle.strategy).inc(gas_cost)
        if profit > 0:
            metrics.PROFIT_WEI.labels(strategy=bundle.strategy).inc(profit)
        log.info(
            "bundle settled",
            extra={
                "fields": {
                    "bundle": bundle.id,
                    "status": step.status,
                    "tx": outcome.tx_hash,
                    "realized_profit": str(profit),
                    "gas_cost": str(gas_cost),
                    "reason": reason,
                }
            },
        )
        tripped = trip_reason(sub.policy.limits, sub.safety.spend(sub.native_token))
        if tripped is not None:
            sub.trip(tripped)
    finally:
        sub.booked.set()
    if step.status == "dropped":
        try:
            await sub.sync_nonces()
        except RpcError as exc:
            log.warning("nonce resync failed", extra={"fields": {"error": str(exc)}})
    await sub.publish_pending()
