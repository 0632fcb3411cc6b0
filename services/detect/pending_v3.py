"""Pending SwapRouter (Uniswap V3) swaps: which DEX a call goes to, which of our pools its path
runs through, and the pools after it (a backrun's post-state).

Why per DEX: SwapRouter finds each hop's pool by CREATE2 from its own factory, so a path's
(tokens, fee) names a pool only together with the router's DEX. Each V3 pool detect holds is
matched once to the factory whose CREATE2 address it is (cached: pools never change factory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mev_common.amm.backrun import AppliedSwap
from mev_common.amm.swap_router import apply_swap_router, path_pools, pool_key
from mev_common.amm.v3 import V3Pool
from mev_common.chain.contracts import V3Dex
from mev_common.chain.pools import v3_pool_address
from mev_common.chain.swap_router_calls import SwapRouterSwap, decode_swap_router_call
from mev_common.messages import PendingTx


class V3Routers:
    """The configured SwapRouters and, per DEX, its pools we hold by `pool_key`."""

    def __init__(self, dexes: Iterable[V3Dex]) -> None:
        self.by_router = {d.router: d for d in dexes if d.router}
        self.index: dict[str, dict[tuple[str, str, int], str]] = {}
        self._dex_of: dict[str, str | None] = {}  # pool address -> its DEX's name (cached)

    def reindex(self, pools: Iterable[V3Pool]) -> None:
        index: dict[str, dict[tuple[str, str, int], str]] = {}
        for pool in pools:
            if pool.address not in self._dex_of:
                self._dex_of[pool.address] = next(
                    (d.name for d in self.by_router.values() if v3_pool_address(
                        d.factory, pool.token0, pool.token1, pool.fee, d.init_code_hash
                    ) == pool.address),
                    None,
                )  # fmt: skip
            name = self._dex_of[pool.address]
            if name is not None:
                index.setdefault(name, {})[pool_key(pool.token0, pool.token1, pool.fee)] = (
                    pool.address
                )
        self.index = index

    def decode(self, tx: PendingTx) -> tuple[V3Dex, SwapRouterSwap] | None:
        """The DEX and swap of a pending call to a SwapRouter, None if it is not one (or not a
        swap we follow). Raises SwapRouterCallError for a malformed swap call."""
        dex = self.by_router.get(tx.to or "")
        if dex is None:
            return None
        swap = decode_swap_router_call(tx.input, tx.value)
        return None if swap is None else (dex, swap)

    def touched(self, dex: V3Dex, swap: SwapRouterSwap) -> list[str]:
        return path_pools(swap, self.index.get(dex.name, {}))

    def apply(
        self, dex: V3Dex, swap: SwapRouterSwap, pools: Mapping[str, V3Pool], timestamp: int
    ) -> AppliedSwap | None:
        return apply_swap_router(swap, self.index.get(dex.name, {}), pools, timestamp=timestamp)
