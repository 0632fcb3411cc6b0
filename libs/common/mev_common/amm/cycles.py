"""Arbitrage cycles of a pool graph, and the index that finds the ones a trigger touched.

Why precomputed: the graph changes only when a pool is added, while reserves change every block,
so cycles hold pool addresses (never pool states) and are enumerated once; on each trigger detect
looks up only the cycles through the pools that changed. Each cycle starts and ends at its most
preferred base token (the order of `base_tokens`), so one closed loop is sized once, not once per
rotation, and profit is always in a token the executor holds. Both directions of a loop are
distinct cycles: only one of them can profit at a time, and which one depends on the prices.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, KeysView, Mapping, Sequence
from itertools import product
from typing import NamedTuple, TypeVar

from mev_common.amm.v2 import V2Pool, pair_key
from mev_common.amm.v3 import V3Pool


class CycleHop(NamedTuple):
    """One swap of a cycle: sell `token_in` for `token_out` in the pool at `pool`."""

    pool: str
    token_in: str
    token_out: str


class Cycle(NamedTuple):
    """Hops whose first `token_in` is the last `token_out` (the start token)."""

    hops: tuple[CycleHop, ...]

    @property
    def start_token(self) -> str:
        return self.hops[0].token_in

    @property
    def pools(self) -> tuple[str, ...]:
        """Each hop's pool. Remembered by identity (the cycle kept alive with it): detect asks
        an indexed cycle's pools several times a trigger (ranking, crowding, booking), and a
        new tuple each time was ~5% of its CPU."""
        got = _POOLS.get(id(self))
        if got is not None and got[0] is self:
            return got[1]
        pools = tuple(hop.pool for hop in self.hops)
        if len(_POOLS) >= POOLS_REMEMBERED:
            _POOLS.clear()
        _POOLS[id(self)] = self, pools
        return pools


POOLS_REMEMBERED = 1 << 16
_POOLS: dict[int, tuple[Cycle, tuple[str, ...]]] = {}


T = TypeVar("T")
Steps = Generator[None, None, T]  # yields between units of work, returns the result
# Units of work between two yields of the step versions: ~0.1-0.3 ms of CPU on the devnet.
STEP_CYCLES = 128


def _order(address: str) -> str:
    return address.lower()


def run_steps(steps: Steps[T]) -> T:
    """Run `steps` to the end in one pass."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


def find_cycles(
    pools: Iterable[V2Pool | V3Pool], base_tokens: Sequence[str], max_hops: int = 3
) -> tuple[Cycle, ...]:
    """Every 2-hop (one pair on two pools) and, if max_hops >= 3, 3-hop cycle, both directions.

    Pools of any design (V2 pairs, V3 pools of each fee tier): a cycle only names addresses.

    A loop without any base token is skipped. The order is deterministic: by hop count, then
    base-token preference, then pool and token addresses.
    """
    return run_steps(cycle_steps(pools, base_tokens, max_hops))


def cycle_steps(
    pools: Iterable[V2Pool | V3Pool], base_tokens: Sequence[str], max_hops: int = 3
) -> Steps[tuple[Cycle, ...]]:
    """`find_cycles` as steps (a yield every STEP_CYCLES cycles made or ordered): detect
    rebuilds its index in slices when a live block adds a pool (~22 ms in one piece on the
    devnet's 3,296 cycles), serving pending swaps between them. The same cycles in the same
    order: a stable sort on the same keys, computed ahead."""
    rank = {token: i for i, token in enumerate(base_tokens)}
    by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
    neighbours: dict[str, set[str]] = defaultdict(set)
    for pool in pools:
        by_pair[pair_key(pool.token0, pool.token1)].append(pool.address)
        neighbours[pool.token0].add(pool.token1)
        neighbours[pool.token1].add(pool.token0)
    for addresses in by_pair.values():
        addresses.sort(key=_order)

    cycles: list[Cycle] = []
    for (token_a, token_b), addresses in by_pair.items():
        start = _start_token((token_a, token_b), rank)
        if start is None or len(addresses) < 2:
            continue
        middle = token_b if start == token_a else token_a
        for first, second in product(addresses, addresses):
            if first != second:
                hops = (CycleHop(first, start, middle), CycleHop(second, middle, start))
                cycles.append(Cycle(hops))
        yield

    if max_hops >= 3:
        for token_a in sorted(neighbours, key=_order):
            for token_b in sorted(neighbours[token_a], key=_order):
                if _order(token_b) <= _order(token_a):
                    continue
                for token_c in sorted(neighbours[token_a] & neighbours[token_b], key=_order):
                    if _order(token_c) > _order(token_b):
                        triangle = (token_a, token_b, token_c)
                        yield from _triangle(by_pair, rank, triangle, cycles)

    keys = []
    for k, c in enumerate(cycles, start=1):
        keys.append((len(c.hops), rank[c.start_token], [_hop_order(h) for h in c.hops]))
        if k % STEP_CYCLES == 0:
            yield
    # sorted in runs, then merged: ~8 ms in one sort; ties (none: a key names every hop) go
    # by position in both, so the order is the stable sort's
    runs = []
    for at in range(0, len(cycles), STEP_CYCLES):
        runs.append(sorted(range(at, min(at + STEP_CYCLES, len(cycles))), key=keys.__getitem__))
        yield
    ordered = []
    for k, i in enumerate(heapq.merge(*runs, key=keys.__getitem__), start=1):
        ordered.append(cycles[i])
        if k % STEP_CYCLES == 0:
            yield
    return tuple(ordered)


def _hop_order(hop: CycleHop) -> tuple[str, str]:
    return _order(hop.pool), _order(hop.token_in)


def _start_token(tokens: Iterable[str], rank: Mapping[str, int]) -> str | None:
    """The most preferred base token among `tokens`, if any."""
    ranked = [token for token in tokens if token in rank]
    return min(ranked, key=rank.__getitem__) if ranked else None


def _triangle(
    by_pair: Mapping[tuple[str, str], list[str]],
    rank: Mapping[str, int],
    tokens: tuple[str, str, str],
    cycles: list[Cycle],
) -> Steps[None]:
    """Both directions of every choice of one pool per side of a token triangle, appended to
    `cycles` (a yield every STEP_CYCLES / 2 choices)."""
    start = _start_token(tokens, rank)
    if start is None:
        return
    first, second = (token for token in tokens if token != start)
    for k, (out_pool, across_pool, back_pool) in enumerate(
        product(
            by_pair[pair_key(start, first)],
            by_pair[pair_key(first, second)],
            by_pair[pair_key(second, start)],
        ),
        start=1,
    ):
        forward = (
            CycleHop(out_pool, start, first),
            CycleHop(across_pool, first, second),
            CycleHop(back_pool, second, start),
        )
        backward = (
            CycleHop(back_pool, start, second),
            CycleHop(across_pool, second, first),
            CycleHop(out_pool, first, start),
        )
        cycles += [Cycle(forward), Cycle(backward)]
        if k % (STEP_CYCLES // 2) == 0:
            yield


def cycle_reserves(cycle: Cycle, pools: Mapping[str, V2Pool]) -> list[tuple[int, int, int]]:
    """(reserve_in, reserve_out, fee_bps) per hop from the pools' current states."""
    path = []
    for hop in cycle.hops:  # V2Pool.reserves inlined: detect runs this for every cycle searched
        pool = pools[hop.pool]
        if hop.token_in == pool.token0:
            path.append((pool.reserve0, pool.reserve1, pool.fee_bps))
        elif hop.token_in == pool.token1:
            path.append((pool.reserve1, pool.reserve0, pool.fee_bps))
        else:
            raise KeyError(f"{hop.token_in} is not a token of pool {pool.address}")
    return path


def may_profit(cycle: Cycle, pools: Mapping[str, V2Pool]) -> bool:
    """Whether any input can profit: the product of the hops' marginal rates after fees
    exceeds 1. Exact as a filter (profit(x) = out(x) - x is concave with slope that product at
    0, and rounding only lowers outputs), and a few multiplications instead of a sizing: half
    of all cycles (the wrong direction of every loop) fail it on any state."""
    num = den = 1
    for hop in cycle.hops:
        pool = pools[hop.pool]
        if hop.token_in == pool.token0:
            reserve_in, reserve_out = pool.reserve0, pool.reserve1
        else:
            reserve_in, reserve_out = pool.reserve1, pool.reserve0
        num *= reserve_out * (10_000 - pool.fee_bps)
        den *= reserve_in * 10_000
    return num > den


class CycleIndex:
    """Cycles by the pools they pass through, so a trigger searches only what it touched.

    `through` remembers its answers (up to MEMO_SIZE pool sets): a pending swap's pools are
    one of a few paths, asked again at every trigger, and the index never changes. `touching`
    (a block's changed pools: a new set each block) does not: remembering it cost a block
    search ~0.5 ms (the pool set of ~2,000 cycles) before its first pause, and a block's sets
    only pushed the pending swaps' paths out of the memo."""

    __slots__ = ("_by_pool", "_memo", "cycles")
    MEMO_SIZE = 4096

    def __init__(self, cycles: Sequence[Cycle]) -> None:
        self.cycles: tuple[Cycle, ...] = tuple(cycles)
        self._by_pool: dict[str, tuple[int, ...]] = run_steps(_by_pool_steps(self.cycles))
        self._memo: dict[frozenset[str], tuple[tuple[Cycle, ...], frozenset[str]]] = {}

    @classmethod
    def build_steps(cls, cycles: Sequence[Cycle]) -> Steps[CycleIndex]:
        """`CycleIndex(cycles)` as steps (a yield every STEP_CYCLES cycles): the same index."""
        index = cls.__new__(cls)
        index.cycles = tuple(cycles)
        index._by_pool = yield from _by_pool_steps(index.cycles)
        index._memo = {}
        return index

    def pools(self) -> KeysView[str]:
        """Every pool some cycle of the index runs through."""
        return self._by_pool.keys()

    def of_pool(self, pool: str) -> tuple[Cycle, ...]:
        """The cycles through one pool, in the index's order."""
        return tuple(self.cycles[i] for i in self._by_pool.get(pool, ()))

    def touching(self, pools: Iterable[str]) -> list[Cycle]:
        """Each cycle through any of `pools` once, in the index's order (deterministic)."""
        key = frozenset(pools)
        known = self._memo.get(key)
        if known is not None:
            return list(known[0])
        return [self.cycles[i] for i in sorted(self._positions(key))]

    def through(self, pools: Iterable[str]) -> tuple[Cycle, ...]:
        """`touching`'s cycles as the index's own tuple: the same object for the same pools
        while it is remembered, so a search can keep work done on it by identity."""
        return self._touching(frozenset(pools))[0]

    def pools_touching(self, pools: Iterable[str]) -> frozenset[str]:
        """Every pool of the cycles `touching` gives: what a search of them reads."""
        return self._touching(frozenset(pools))[1]

    def _touching(self, key: frozenset[str]) -> tuple[tuple[Cycle, ...], frozenset[str]]:
        found = self._memo.get(key)
        if found is None:
            cycles = tuple(self.cycles[i] for i in sorted(self._positions(key)))
            found = cycles, frozenset(hop.pool for cycle in cycles for hop in cycle.hops)
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _positions(self, pools: frozenset[str]) -> set[int]:
        positions: set[int] = set()
        for pool in pools:
            positions.update(self._by_pool.get(pool, ()))
        return positions

    def only(self, keep: Callable[[Cycle], bool]) -> CycleIndex:
        """The index of the cycles `keep` admits (detect's backruns: V2 pairs only)."""
        return run_steps(self.only_steps(keep))

    def only_steps(self, keep: Callable[[Cycle], bool]) -> Steps[CycleIndex]:
        """`only` as steps: the same index."""
        kept = []
        for k, cycle in enumerate(self.cycles, start=1):
            if keep(cycle):
                kept.append(cycle)
            if k % STEP_CYCLES == 0:
                yield
        return (yield from CycleIndex.build_steps(kept))


def _by_pool_steps(cycles: tuple[Cycle, ...]) -> Steps[dict[str, tuple[int, ...]]]:
    """Each pool's cycle positions, in order (a yield every STEP_CYCLES cycles)."""
    by_pool: dict[str, list[int]] = defaultdict(list)
    for position, cycle in enumerate(cycles):
        for pool in dict.fromkeys(cycle.pools):
            by_pool[pool].append(position)
        if position % STEP_CYCLES == STEP_CYCLES - 1:
            yield
    return {pool: tuple(positions) for pool, positions in by_pool.items()}
