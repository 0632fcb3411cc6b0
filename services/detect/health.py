"""Detect's `pools` health check: what it holds and what its searches did."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mev_common.runtime import Check

if TYPE_CHECKING:
    from services.detect.service import Detector


def pools_check(d: Detector) -> Check:
    return Check(
        True,
        {
            "loaded": d.loaded,
            "pools": len(d.registry.pools),
            "v3_pools": len(d.registry.v3.pools),
            "tokens": len(d.tokens),
            "cycles": len(d.index.cycles),
            "block": d.registry.block_number,
            "searched": d.stats.searched,
            "below_min_profit": d.stats.below_min_profit,
            "outranked": d.stats.outranked,  # never sized: a better one was proven first
            "skipped_logs": d.registry.skipped_logs,
            "backruns_crowded": d.crowded,
            "backruns_withdrawn": d.withdrawn,
            **(d.peers.health() if d.peers is not None else {}),
            "published": d.published,
            "pending_with_opportunity": d.pending_with_opportunity,
        },
    )
