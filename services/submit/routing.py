"""Where a priced bundle may go: our own trades' conflicts (PoolClaims, global) and its nonce lane
(services/submit/lanes.py), settling our trades first when that may lift the refusal."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mev_common.chain.jsonrpc import RpcError
from mev_common.messages import Bundle

from services.submit.lanes import Lane, choose_lane

if TYPE_CHECKING:
    from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")


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
    if not sub.claims.may_have_landed(pools, bundle.block_number, tip, bundle.id):
        return picked
    try:
        await sub.track_once()
    except RpcError as exc:  # the refusal stands
        log.warning(
            "settling before a conflict check failed", extra={"fields": {"error": str(exc)}}
        )
        return picked
    return _pick(sub, bundle, pools, tip)
