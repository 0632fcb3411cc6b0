"""Where a priced bundle may go: a backrun only to the node holding its victim
(`victim_node_refusal`), then our own trades' conflicts (PoolClaims, global) and its nonce lane
(services/submit/lanes.py), settling our trades first when that may lift the refusal; on a
trader's lane it is priced again with that lane's exact gas (`lanes.on_lane`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mev_common.chain.jsonrpc import RpcError
from mev_common.executor import TRADER_EXTRA_GAS
from mev_common.messages import Bundle

from services.submit import settlement
from services.submit.decide import ChainHead, Refusal, SendPlan, decide
from services.submit.lanes import Lane, choose_lane, on_lane

if TYPE_CHECKING:
    from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")


def victim_node_refusal(bundle: Bundle, endpoints: Sequence[str]) -> str | None:
    """Why a backrun may not be sent (None for a block trade, or a backrun whose victim was
    seen on one of our `endpoints`, the one it is sent to: services/submit/sender.py). With a
    single endpoint a victim seen anywhere was seen on it (every service reads one config)."""
    if bundle.victim_tx_hash is None:
        return None
    seen = bundle.victim_seen_on
    if seen is None:
        if len(endpoints) == 1:
            return None
        return (
            f"victim's endpoint unknown (no victim_seen_on; {len(endpoints)} RPC endpoints): "
            "a backrun goes only to the node that holds its victim"
        )
    if seen not in endpoints:
        return f"victim seen on endpoint {seen!r}, none of chain.rpc_endpoints"
    return None


def _pick(sub: Submitter, bundle: Bundle, pools: frozenset[str], tip: int) -> Lane | str:
    after = bundle.after_bundles
    reason = sub.claims.conflict(bundle.id, pools, bundle.block_number, after)
    if reason is not None:
        return reason
    loads = sub.lanes.loads(sub.claims.tips, sub.claims.lane_of)
    chosen = choose_lane(bundle.id, tip, frozenset(after), loads)
    return chosen if isinstance(chosen, str) else sub.lanes[chosen]


async def route(sub: Submitter, bundle: Bundle, pools: frozenset[str], tip: int) -> Lane | str:
    """The lane to send on, or why not now. When a trade of ours in the way may already be mined
    at the bundle's block, our trades are settled first: the tracking loop settles a landed
    trade up to a quarter block late, and a block opportunity proven on the state our trade
    landed in was refused as "in our unsettled trade" meanwhile. A pool is freed only by a
    receipt."""
    withdrawn = next((b for b in bundle.after_bundles if b in sub.withdrawn), None)
    if withdrawn is not None:  # it will be cancelled: not the state this one was proven on
        return f"proven on top of our trade {withdrawn}, withdrawn by detect"
    picked = _pick(sub, bundle, pools, tip)
    if not isinstance(picked, str):
        return picked
    lanes = sub.claims.landed_lanes(pools, bundle.block_number, tip, bundle.id)
    if not lanes:
        return picked
    # the lanes of the trades in the way (holders, lower bids) and of those it stands on: no
    # other lane's settlement can lift the refusal
    lanes |= {sub.claims.lane_of[b] for b in bundle.after_bundles if b in sub.claims.lane_of}
    try:
        await settle_through(sub, lanes, bundle.block_number)
    except RpcError as exc:  # the refusal stands
        log.warning(
            "settling before a conflict check failed", extra={"fields": {"error": str(exc)}}
        )
        return picked
    return _pick(sub, bundle, pools, tip)


async def settle_through(sub: Submitter, lanes: frozenset[int], block: int) -> None:
    """A tracking pass over `lanes` unless each one's last pass began at a head of `block` or
    later: that pass read every receipt mined up to it. The tracking loop runs one as a block
    message shows a trade of ours (loops.py), so a bundle of that block usually waits for no
    RPC round trip here, at most for that pass to end."""
    async with sub.track_lock:
        if any(sub.tracked_from.get(lane, -1) < block for lane in lanes):
            await settlement.track_once(sub, lanes)


async def route_priced(
    sub: Submitter, bundle: Bundle, plan: SendPlan, head: ChainHead
) -> tuple[Lane, Bundle, SendPlan] | str:
    """`victim_node_refusal` and `route`, then the bundle and plan as sent from the lane picked
    (a trader's lane costs TRADER_EXTRA_GAS more, so every check of `decide` runs again on that
    gas), or why not."""
    endpoints = [e.name for e in sub.settings.chain.rpc_endpoints]
    if (refused := victim_node_refusal(bundle, endpoints)) is not None:
        return refused
    routed = await route(sub, bundle, plan.pools, plan.max_priority_fee_per_gas)
    if isinstance(routed, str) or routed.index == 0:
        return routed if isinstance(routed, str) else (routed, bundle, plan)
    sent = on_lane(bundle, routed.index)
    priced = decide(sent, sub.policy, head, sub.safety.spend(sub.native_token))
    if isinstance(priced, Refusal):
        if priced.trip:
            sub.trip(priced.reason)
        return f"on lane {routed.index} (a trader, +{TRADER_EXTRA_GAS} gas): {priced.reason}"
    return routed, sent, priced
