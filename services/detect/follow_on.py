"""A backrun's follow-on: the cycle our own backrun leaves open, sized on the state after it. Pure.

Why: one large user swap on a pool opens several cycles through it (its pair on the other DEX,
triangles through DAI, USDT, WBTC). Our backrun closes the best of them and moves its pools;
the next best cycle shares a pool with ours and stays open until a block trade takes it in the
next block. In bench's capture scenario (docs/DEVNET.md, "What the residual is made of") that
was 0.18-0.29 ETH in a block, most of what the bot left. The backrun search keeps pool-disjoint
cycles only, each proven on [victim] (of two sharing a pool, the second would meet our first);
a follow-on is sized on [victim, our backrun] and proven there by simulate, which stacks it on
our backrun (services/simulate/stacking.py), so detect publishes follow-ons only with stacking
on. Simulate and the executor's minProfit still decide: nothing trades without a profitable
simulation after gas.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Protocol

from mev_common.amm.cycles import Cycle, CycleIndex
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool

from services.detect.search import Found

Pool = V2Pool | V3Pool


class Search(Protocol):
    """services/detect/search.py's `search` with the victim's settings bound."""

    def __call__(
        self,
        cycles: Iterable[Cycle],
        pools: Mapping[str, Pool],
        *,
        until: Callable[[Found], bool] | None = None,
    ) -> list[Found]: ...


def after_trade(found: Found, pools: Mapping[str, Pool]) -> dict[str, V2Pool] | None:
    """The pools of `found`'s cycle after its trade (its exact hop amounts); None when a hop
    is not a V2 pair in `pools` (a V3 hop's state after the trade is not modelled here)."""
    out: dict[str, V2Pool] = {}
    amount = found.trade.amount_in
    for hop, amount_out in zip(found.cycle.hops, found.trade.amounts_out, strict=True):
        pool = out.get(hop.pool) or pools.get(hop.pool)
        if not isinstance(pool, V2Pool):
            return None
        out[hop.pool] = pool.with_amounts(hop.token_in, amount, amount_out)
        amount = amount_out
    return out


def follow_on(
    first: Found,
    post: Mapping[str, Pool],
    index: CycleIndex,
    fallback: Mapping[str, Pool],
    search: Search,
    taken: Collection[Cycle] = (),
) -> tuple[Found, dict[str, Pool]] | None:
    """The best cycle through a pool of `first` on the state after `first`'s trade (`post`:
    the pools after the victim, `fallback` the head's for the rest), and that state; None if
    none pays its gas and minimum. A cycle disjoint from `first` is left out: the victim's own
    search already had it, on the same pools. So is one in `taken` (already ours for this
    victim: the same cycle is the same opportunity id, and a follow-on can reopen it)."""
    moved = after_trade(first, post)
    if moved is None:
        return None
    cycles = index.through(moved)
    state: dict[str, Pool] = {}
    for address in index.pools_touching(moved):
        pool = moved.get(address) or post.get(address) or fallback.get(address)
        if pool is not None:
            state[address] = pool
    mine = set(first.cycle.pools)

    def wanted(found: Found) -> bool:
        return (
            found.cycle != first.cycle
            and found.cycle not in taken
            and not mine.isdisjoint(found.cycle.pools)
        )

    for found in search(cycles, state, until=wanted):  # the rest is never sized
        if wanted(found):
            return found, state
    return None


def follow_ons(
    first: Found,
    post: Mapping[str, Pool],
    index: CycleIndex,
    fallback: Mapping[str, Pool],
    search: Search,
    limit: int,
    taken: Iterable[Cycle] = (),
) -> list[tuple[Found, dict[str, Pool]]]:
    """Up to `limit` follow-ons, each on the state after the one before (our backrun closes
    one cycle, its follow-on the next: a large swap can leave several; a stack holds at most
    `simulate.stack_depth` of ours under a trade), never a cycle already ours for this victim
    (`first`'s, `taken`'s or an earlier follow-on's)."""
    out: list[tuple[Found, dict[str, Pool]]] = []
    previous, state = first, dict(post)
    ours = {first.cycle, *taken}
    while len(out) < limit:
        # `state` is read first (as the post-state), so the head's pools need no merged copy
        more = follow_on(previous, state, index, fallback, search, ours)
        if more is None:
            break
        ours.add(more[0].cycle)
        out.append(more)
        previous, state = more[0], {**state, **more[1]}
    return out
