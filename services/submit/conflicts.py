"""Our own trades must not race each other: one pool, one trade in flight.

Two bundles through the same pool were both proven on the same state; whichever lands second
finds that state gone and reverts, paying gas for nothing. So a bundle is refused while any of
its pools is in an unsettled trade of ours, and after one of our trades through a pool lands in
block L, a bundle proven on state older than L is refused too (its numbers predate our trade).

A backrun simulate proved on top of our earlier trades (`bundle.after_bundles`: the chain
applies them first, as the new trade takes the next nonce) may share their pools: it is sent
while every one of those trades is still in flight, and refused once any of them settled or was
never sent (the state it was proven on is then not the one it meets). It then holds the pools;
the earlier trade's landing still counts for `landed_at` when it settles.

Our trades share one nonce sequence, so a new trade lands no earlier than every unmined trade of
ours, whatever it bids: behind an earlier trade bidding less, it lands after every tx bidding
between the two, which it was not proven behind (seen on the devnet: our backrun of a block-18
victim missed block 19, a block-19 backrun through other pools bidding 2.5 gwei landed behind it
and behind four user swaps tipping between 0.5 and 2.5 gwei, and reverted). So a bundle is
refused while an unsettled trade of ours bids a lower priority fee than it would: with nonce
lanes (services/submit/lanes.py) that rule is per lane and the submitter checks it there
(`conflict` without a tip); `lane_of` records each in-flight trade's lane.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mev_common.executor import decode_execute
from mev_common.messages import Bundle

from services.submit.lanes import waits_behind


def bundle_pools(bundle: Bundle) -> frozenset[str]:
    """The pairs the bundle's executor call trades through; ValueError if it is not one."""
    call = decode_execute(bytes.fromhex(bundle.data[2:]))
    return frozenset(hop.pair for hop in call.hops)


@dataclass
class PoolClaims:
    in_flight: dict[str, str] = field(default_factory=dict)  # pool -> bundle id
    landed_at: dict[str, int] = field(default_factory=dict)  # pool -> block our trade landed in
    proven_on: dict[str, int] = field(default_factory=dict)  # in-flight bundle -> state block
    pools_of: dict[str, frozenset[str]] = field(default_factory=dict)  # in-flight bundle -> pools
    tips: dict[str, int] = field(default_factory=dict)  # in-flight bundle -> its priority fee
    lane_of: dict[str, int] = field(default_factory=dict)  # in-flight bundle -> its nonce lane

    def conflict(
        self,
        bundle_id: str,
        pools: Iterable[str],
        state_block: int,
        after: Iterable[str] = (),
        tip: int | None = None,
    ) -> str | None:
        """Why the bundle must not be sent now, or None; `tip`: the priority fee it would bid."""
        on_top = frozenset(after)
        for base in sorted(on_top):
            if base not in self.proven_on:
                return f"proven on top of our trade {base}, which is not in flight"
        for pool in sorted(pools):
            holder = self.in_flight.get(pool)
            if holder is not None and holder != bundle_id and holder not in on_top:
                return f"pool {pool} is in our unsettled trade {holder}"
            landed = self.landed_at.get(pool)
            if landed is not None and state_block < landed:
                return (
                    f"proven on block {state_block}, before our trade through {pool} "
                    f"landed in block {landed}"
                )
        return waits_behind(self.tips, tip, bundle_id)

    def _bidding_below(self, tip: int | None, bundle_id: str) -> list[str]:
        if tip is None:
            return []
        return sorted(b for b, t in self.tips.items() if t < tip and b != bundle_id)

    def claim(
        self,
        bundle_id: str,
        pools: Iterable[str],
        state_block: int = -1,
        tip: int | None = None,
        lane: int = 0,
    ) -> None:
        pools = frozenset(pools)
        self.lane_of[bundle_id] = lane
        if tip is not None:
            self.tips[bundle_id] = tip
        for pool in pools:
            self.in_flight[pool] = bundle_id
        self.proven_on[bundle_id] = state_block
        self.pools_of[bundle_id] = pools

    def may_have_landed(
        self, pools: Iterable[str], state_block: int, tip: int | None = None, bundle_id: str = ""
    ) -> bool:
        """Could a trade holding one of `pools` already be mined in a block at or before
        `state_block`? It was proven on block h and lands in h + 1 at the earliest. Then
        settling it first (receipts) may free the pool, or refuse the bundle by `landed_at`:
        never a pass on a pool whose trade is still on the wire."""
        return bool(self.landed_lanes(pools, state_block, tip, bundle_id))

    def landed_lanes(
        self, pools: Iterable[str], state_block: int, tip: int | None = None, bundle_id: str = ""
    ) -> frozenset[int]:
        """The nonce lanes of the trades `may_have_landed` finds: settling those lanes alone
        may lift the refusal (a pass over every lane cost ~3x the round trips on the bench's
        3 lanes, 58 ms at p95 on the loaded machine, while the bundle waited)."""
        holders = {self.in_flight[p] for p in pools if p in self.in_flight}
        holders.update(self._bidding_below(tip, bundle_id))
        return frozenset(
            self.lane_of.get(h, 0) for h in holders if self.proven_on.get(h, -1) + 1 <= state_block
        )

    def release(self, bundle_id: str, landed_block: int | None) -> None:
        """The trade settled; `landed_block` if it changed its pools (mined and succeeded)."""
        self.proven_on.pop(bundle_id, None)
        self.tips.pop(bundle_id, None)
        self.lane_of.pop(bundle_id, None)
        mine = self.pools_of.pop(bundle_id, frozenset())
        for pool in [p for p, holder in self.in_flight.items() if holder == bundle_id]:
            del self.in_flight[pool]
        if landed_block is not None:  # also pools a trade stacked on this one holds now
            for pool in mine:
                self.landed_at[pool] = max(landed_block, self.landed_at.get(pool, 0))
