"""A pending transaction as detect sees it: a Router02 (V2) or SwapRouter (V3) swap decoded,
the pools of ours its path runs through, and those pools after it (a backrun's post-state).

Shared by the searched triggers (`Detector.on_pending`) and, with replicas, by the reader of
the whole mempool (`PeerReader`), which only decodes and books: both must see a swap the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from mev_common.amm.backrun import AppliedSwap, apply_router_swap
from mev_common.amm.v2 import pair_key
from mev_common.chain.contracts import Dex, V3Dex
from mev_common.chain.router_calls import RouterSwap, decode_router_call
from mev_common.chain.swap_router_calls import SwapRouterSwap
from mev_common.messages import PendingTx

from services.detect.registry import PairView

if TYPE_CHECKING:
    from services.detect.service import Detector


@dataclass(frozen=True)
class PendingSwap:
    """A decoded swap: a V2 `swap` on `dex`, or a V3 one (`v3`)."""

    dex: Dex | None
    swap: RouterSwap | None
    v3: tuple[V3Dex, SwapRouterSwap] | None


def decode_pending(d: Detector, tx: PendingTx) -> PendingSwap | None:
    """The swap a pending tx makes through a router we follow, None if it makes none. Raises
    RouterCallError or SwapRouterCallError for a malformed swap call."""
    dex = d.dex_by_router.get(tx.to or "")
    if dex is not None:
        swap = decode_router_call(tx.input, tx.value)
        return None if swap is None else PendingSwap(dex, swap, None)
    v3 = d.v3_routers.decode(tx)
    return None if v3 is None else PendingSwap(None, None, v3)


def path_pools(d: Detector, swap: PendingSwap) -> list[str]:
    """Our pools along the swap's path (what it moves, whether or not it would revert)."""
    if swap.v3 is not None:
        return d.v3_routers.touched(*swap.v3)
    assert swap.dex is not None and swap.swap is not None
    pairs = d.pair_index.get(swap.dex.name, {})
    path = swap.swap.path
    return [a for x, y in pairwise(path) if (a := pairs.get(pair_key(x, y))) is not None]


def apply_pending(d: Detector, swap: PendingSwap, lands_at: int) -> AppliedSwap | None:
    """The pools after the swap, on detect's head state; None if the victim would revert."""
    if swap.v3 is not None:
        return d.v3_routers.apply(*swap.v3, d.registry.v3.pools, lands_at)
    assert swap.dex is not None and swap.swap is not None
    pairs = PairView(d.pair_index.get(swap.dex.name, {}), d.registry.pools)
    return apply_router_swap(
        swap.swap, pairs, swap.dex.fee_bps, timestamp=lands_at, weth=d.contracts.weth
    )
