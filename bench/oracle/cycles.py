"""Every 2- and 3-pool cycle that starts and ends in one token, over a deployment's pairs.

Why enumerate rather than reuse detect's graph: the oracle must see every cycle detect could
have missed. A cycle uses distinct pools and returns to the start token only at its last hop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple


class Hop(NamedTuple):
    pair: str  # pair address, checksummed as in deployment.json
    token_in: str
    token_out: str
    fee_bps: int
    label: str  # "A:WETH>USDC", for reports


class Cycle(NamedTuple):
    hops: tuple[Hop, ...]

    @property
    def name(self) -> str:
        return " ".join(h.label for h in self.hops)


def _hops_from(pairs: Iterable[Mapping[str, Any]]) -> list[Hop]:
    """Both directions of every pair."""
    out = []
    for p in pairs:
        for a, b, sa, sb in (
            (p["token0"], p["token1"], p["symbol0"], p["symbol1"]),
            (p["token1"], p["token0"], p["symbol1"], p["symbol0"]),
        ):
            out.append(Hop(p["address"], a, b, int(p["fee_bps"]), f"{p['dex']}:{sa}>{sb}"))
    return out


def find_cycles(pairs: Iterable[Mapping[str, Any]], start: str, max_hops: int = 3) -> list[Cycle]:
    """Cycles of 2..max_hops distinct pools from `start` back to `start`."""
    hops = _hops_from(pairs)
    by_token: dict[str, list[Hop]] = {}
    for hop in hops:
        by_token.setdefault(hop.token_in.lower(), []).append(hop)
    start_key = start.lower()
    found: list[Cycle] = []

    def extend(path: tuple[Hop, ...]) -> None:
        for hop in by_token.get(path[-1].token_out.lower(), []):
            if any(hop.pair == used.pair for used in path):
                continue
            nxt = (*path, hop)
            if hop.token_out.lower() == start_key:
                if len(nxt) >= 2:
                    found.append(Cycle(nxt))
            elif len(nxt) < max_hops:
                extend(nxt)

    for first in by_token.get(start_key, []):
        extend((first,))
    return found
