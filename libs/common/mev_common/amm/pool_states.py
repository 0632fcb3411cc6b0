"""Values computed from one V3 pool value, kept for its newest few states per pool address.

A search sizes hundreds of cycles through one V3 pool, so what each cycle would recompute from
the pool's state alone (local_hop's first step, mixed_sizing's first piece) is kept. Pools are
immutable, so the object is the state: entries are keyed by `id(pool)` and hold the pool, so its
id is not reused while kept. Each swap makes a new pool object, so a cache bounded only by its
total size (4,096 entries, then cleared) kept every state it met: detect's live V3Pool count
climbed ~120 a minute in `make run`, the caps ~25 minutes away (PERF_HISTORY, h103). Bounded
per (address, direction) instead, it keeps the newest `per_pool` states of each pool, whatever
the number of swaps: with 2, the block's state and the newest pending victim's post-swap state,
which searches alternate between.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from mev_common.amm.v3 import V3Pool

__all__ = ["PoolStates"]

T = TypeVar("T")


class PoolStates(Generic[T]):
    """`entries[(id(pool), zero_for_one)]` = (pool, value): read it directly (the hit path is
    one dict lookup and an identity check); `put` on a miss evicts the pool address's oldest
    state in that direction beyond `per_pool`."""

    __slots__ = ("_order", "entries", "per_pool")

    def __init__(self, per_pool: int) -> None:
        self.per_pool = per_pool
        self.entries: dict[tuple[int, bool], tuple[V3Pool, T]] = {}
        self._order: dict[tuple[str, bool], list[int]] = {}  # ids kept, oldest first

    def put(self, pool: V3Pool, zero_for_one: bool, value: T) -> T:
        """Keep `value` for `pool` (not kept yet) and return it."""
        ids = self._order.setdefault((pool.address, zero_for_one), [])
        if len(ids) >= self.per_pool:
            del self.entries[(ids.pop(0), zero_for_one)]
        ids.append(id(pool))
        self.entries[(id(pool), zero_for_one)] = (pool, value)
        return value

    def __len__(self) -> int:
        return len(self.entries)
