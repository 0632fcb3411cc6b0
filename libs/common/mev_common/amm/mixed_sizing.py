"""Optimal input for a cycle whose hops mix V2 pairs and V3 pools, exact on integers.

Why per tick range and not a float search: inside one range of constant liquidity L a V3 pool
is a constant-product pool with virtual reserves L/sqrtP and L*sqrtP, so a path through V2
pairs and V3 ranges is one Möbius map A*x / (B + C*x) before rounding, whose optimum has the
closed form x* = (sqrt(A*B) - B) / C (as in sizing.py). The walk starts at x = 0 with every hop
in its current range; if no hop leaves its range before x*, x* is the optimum; otherwise x moves
to the first range end (the input at which some V3 hop reaches its next initialized tick), that
hop enters its next range (liquidity +- liquidityNet) and the map is recomposed. The unrounded
profit is concave, so the first piece holding its own optimum holds the global one: a handful
of pieces, no iteration on a float.

Then integers: every hop rounds (V2 floors its output; V3 rounds each step, input up and output
down), so the exact output is a step function and the best input is a "tight" one, the least
input reaching its own output (each hop inverted exactly, a V3 hop by its exact-output swap).
That saves the first hop's rounding (through a 6-decimal token, up to one unit: ~3e8 wei of
WETH). The first-hop outputs u next to the optimum's are tried too (MIDDLE_WINDOW each side),
and, when the second hop is V3, the two nearest u whose last swap step takes an input the fee
floor (amount * (1e6 - fee) // 1e6) leaves whole: off those, a V3 hop on a coarse token wastes
up to a unit too; a V3 first hop's fee-aligned inputs likewise (a wei). Through two coarse middle
tokens the roundings waste up to a unit each whatever the input: coarse_search.py walks the
first middle amount to where they waste least. Measured against degenbot 0.3.0 in bench
(amm_v3_peer); the cycles where it once won are tests/unit/amm/test_mixed_vs_degenbot.py.
The exact hops themselves (and why a partial V3 fill pays nothing) are in legs.py. Candidates
are priced by each hop's last swap step alone (local_hop.LocalHop: the steps before end at
fixed ticks), the pools' exact outputs at a fraction of a full swap's cost. A V3 hop that stays
in its first step at the optimum runs no swap at all (local_path), one that leaves it runs one,
reused for its last step; each pool's first range piece is kept across the cycles of a search
(_first_piece, cloned only if the walk crosses a range; a V3 hop's first step likewise,
local_hop._FIRST_STEPS). Where the time goes: a 3-pool cycle through two coarse tokens
spends over half of it in coarse_middle_search (~85 prices on path_model's float model, ~1.3 µs
each); of the candidates around it, only those the model prices within SCREEN_UNITS of the best
are measured exactly (~5 µs each).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from math import gcd, isqrt

from mev_common.amm.coarse_search import coarse_middle_search
from mev_common.amm.legs import (
    Leg,
    V3Leg,
    cycle_legs,
    last_step_start,
    leg_least_input,
    leg_out,
    path_amounts,
    path_least_input,
)
from mev_common.amm.local_hop import local_path
from mev_common.amm.pool_states import PoolStates
from mev_common.amm.sizing import CycleTrade
from mev_common.amm.v2 import FEE_DENOMINATOR as V2_FEE_DENOMINATOR
from mev_common.amm.v3_math import FEE_DENOMINATOR as V3_FEE_DENOMINATOR
from mev_common.amm.v3_math import (
    MAX_TICK,
    MIN_TICK,
    get_amount0_delta,
    get_amount1_delta,
    get_sqrt_ratio_at_tick,
)

__all__ = ["V3Leg", "continuous_optimum", "cycle_legs", "leg_least_input", "leg_out",
           "path_amounts", "path_least_input", "size_mixed"]  # fmt: skip

MAX_PIECES = 64  # range changes the continuous walk follows before it gives up (never seen > 6)
MIDDLE_WINDOW = 1  # first-hop outputs tried each side of the tight optimum
# 3-hop cycles whose middle tokens are coarse (one unit worth more than this many units of the
# start token) search the first middle amount (coarse_search.py); its last KEEP_VISITED are tried
COARSE_UNITS = 10**6
KEEP_VISITED = 2
# measured exactly: candidates the coarse search's model prices within this many middle units
# of the best (the model is off by < 1e-4 of a unit; candidates differ by ~0.01-1 unit)
SCREEN_UNITS = 1e-2


def _fee_aligned(leg: Leg, amount: int, offset: int | None = None) -> tuple[int, ...]:
    """The two inputs nearest `amount` that a V3 hop's fee floor leaves whole.

    A V3 hop floors its input less fee (amount * (1e6 - fee) // 1e6): up to one unit of a
    coarse token (~3e8 wei through USDC), unless what reaches its last step is a multiple of
    this period (the steps before end at fixed ticks, so their inputs are fixed). `offset`:
    last_step_start(leg, amount) if the caller has it."""
    if not isinstance(leg, V3Leg) or amount <= 0:
        return ()
    period = V3_FEE_DENOMINATOR // gcd(V3_FEE_DENOMINATOR, V3_FEE_DENOMINATOR - leg.pool.fee)
    if offset is None:
        offset = last_step_start(leg, amount)
    low = offset + (amount - offset) // period * period
    return tuple(a for a in (low, low + period) if a > 0)


def _screened(
    candidates: list[int], price: Callable[[int], int | None], best: int, slack: int
) -> list[int]:
    """The first middle amounts worth measuring exactly: those the coarse search's model
    (path_model.py: off by < 1e-4 of a middle unit) prices within `slack` of the best (the
    best exact profit `best` so far, or the best modelled), and any it cannot price. An exact
    measure costs ~5 µs, the model's ~1 µs."""
    valued = [(u, price(u)) for u in candidates]
    floor = max([v for _, v in valued if v is not None] + [best]) - slack
    return [u for u, v in valued if v is None or v >= floor]


# ---- the continuous walk over ranges ------------------------------------------------------


class _Piece:
    """One hop's current range as a constant-product pool: virtual reserves, fee, and the input
    left until the range ends (None: never, a V2 pair)."""

    __slots__ = ("cap", "final", "g_den", "g_num", "leg", "liquidity", "r_in", "r_out",
                 "sqrt_end", "tick_end", "ticks")  # fmt: skip

    def __init__(self, leg: Leg) -> None:
        self.leg = leg
        self.cap: int | None = None
        self.final = False  # the range ends at the pool's price limit: nothing beyond
        if not isinstance(leg, V3Leg):
            self.r_in, self.r_out, fee_bps = leg
            self.g_num, self.g_den = V2_FEE_DENOMINATOR - fee_bps, V2_FEE_DENOMINATOR
            return
        pool = leg.pool
        self.g_num, self.g_den = V3_FEE_DENOMINATOR - pool.fee, V3_FEE_DENOMINATOR
        self.ticks = sorted(pool.ticks)
        self.liquidity = pool.liquidity
        self._enter(pool.sqrt_price_x96, pool.tick)

    def _enter(self, sqrt_price: int, tick: int) -> None:
        """Set the range that starts at `sqrt_price` (the pool's tick `tick`)."""
        leg = self.leg
        assert isinstance(leg, V3Leg)
        while True:
            if leg.zero_for_one:  # the next initialized tick at or below the current one
                k = bisect_right(self.ticks, tick) - 1
                self.tick_end = self.ticks[k] if k >= 0 else MIN_TICK
            else:  # the next one above
                k = bisect_right(self.ticks, tick)
                self.tick_end = self.ticks[k] if k < len(self.ticks) else MAX_TICK
            self.final = self.tick_end not in leg.pool.ticks
            self.sqrt_end = get_sqrt_ratio_at_tick(self.tick_end)
            if self.liquidity > 0 or self.final:
                break
            # an empty range: the price crosses it for nothing
            sqrt_price, tick = self.sqrt_end, self._cross()
        liquidity = self.liquidity
        if leg.zero_for_one:
            self.r_in, self.r_out = (liquidity << 96) // sqrt_price, liquidity * sqrt_price >> 96
            net = get_amount0_delta(self.sqrt_end, sqrt_price, liquidity, True) if liquidity else 0
        else:
            self.r_in, self.r_out = liquidity * sqrt_price >> 96, (liquidity << 96) // sqrt_price
            net = get_amount1_delta(sqrt_price, self.sqrt_end, liquidity, True) if liquidity else 0
        self.cap = -(-net * self.g_den // self.g_num)

    def _cross(self) -> int:
        """Cross the range's end tick; the tick the pool then reports."""
        leg = self.leg
        assert isinstance(leg, V3Leg)
        net = leg.pool.ticks[self.tick_end][1]
        if leg.zero_for_one:
            self.liquidity -= net
            return self.tick_end - 1
        self.liquidity += net
        return self.tick_end

    def out(self, amount: int) -> int:
        return self.g_num * amount * self.r_out // (self.r_in * self.g_den + self.g_num * amount)

    def advance(self, amount: int, to_end: bool) -> int:
        """Spend `amount` in this range (or all of it if `to_end`); the output it gives."""
        if to_end and self.cap is not None and not self.final:
            amount = self.cap
            got = self.out(amount)
            self._enter(self.sqrt_end, self._cross())
            return got
        got = self.out(amount)
        self.r_in += self.g_num * amount // self.g_den
        self.r_out -= got
        if self.cap is not None:
            self.cap = max(0, self.cap - amount)
        return got

    def clone(self) -> _Piece:
        """A copy of a V3 hop's piece (every slot set); `ticks` shared: never changed."""
        copy = _Piece.__new__(_Piece)
        for name in _Piece.__slots__:
            setattr(copy, name, getattr(self, name))
        return copy


# A pool's first piece per direction, kept across the cycles of a search (a block's search sizes
# hundreds of cycles through one V3 pool, and sorting a real pool's hundreds of ticks costs tens
# of µs; neutral on bench's few-tick pools), for the newest FIRST_PIECES_PER_POOL states of each
# pool (pool_states.py: kept by total size, dead states piled up to the cap)
FIRST_PIECES_PER_POOL = 2
_FIRST_PIECES: PoolStates[_Piece] = PoolStates(FIRST_PIECES_PER_POOL)
_PIECES = _FIRST_PIECES.entries


def _first_piece(leg: Leg) -> _Piece:
    if not isinstance(leg, V3Leg):
        return _Piece(leg)
    hit = _PIECES.get((id(leg.pool), leg.zero_for_one))
    if hit is None or hit[0] is not leg.pool:
        return _FIRST_PIECES.put(leg.pool, leg.zero_for_one, _Piece(leg))
    return hit[1]  # shared: continuous_optimum clones it before it advances


def _compose(pieces: Sequence[_Piece]) -> tuple[int, int, int]:
    a_acc, b_acc, c_acc = 1, 1, 0
    for p in pieces:
        a, b = p.g_num * p.r_out, p.r_in * p.g_den
        a_acc, b_acc, c_acc = a_acc * a, b_acc * b, c_acc * b + a_acc * p.g_num
    return a_acc, b_acc, c_acc


def continuous_optimum(legs: Sequence[Leg], max_input: int | None = None) -> tuple[int, int]:
    """(input, unrounded profit) at the optimum of the path's unrounded curve, range by range;
    (0, 0) if no input profits. The profit bounds the exact profits from above only roughly:
    the virtual reserves are floored (through a 6-decimal token up to ~1e-3 of a unit), and a
    walk that crosses a range passes floored amounts on (up to a unit a hop); on bench
    amm_v3_peer's 242 profitable cycles size_mixed's answer beats it by more than len(legs) wei on
    64, by up to 716,954 wei (65,744,010 with a crossing). Callers filtering on it add slack."""
    pieces = [_first_piece(leg) for leg in legs]
    shared = True  # V3 pieces are the cache's until the walk first advances them
    x0 = out0 = 0
    for _ in range(MAX_PIECES):
        big_a, big_b, big_c = _compose(pieces)
        if big_a <= big_b or big_c == 0:
            break  # the marginal rate is below 1 here: x0 is the optimum
        delta = (isqrt(big_a * big_b) - big_b) // big_c
        # the least path input at which some hop reaches its range end
        limit, limit_hop = None, -1
        a_p, b_p, c_p = 1, 1, 0  # the map of the hops before hop i
        for i, p in enumerate(pieces):
            if p.cap is not None and a_p > c_p * p.cap:
                at = -(-b_p * p.cap // (a_p - c_p * p.cap))
                if limit is None or at < limit:
                    limit, limit_hop = at, i
            a, b = p.g_num * p.r_out, p.r_in * p.g_den
            a_p, b_p, c_p = a_p * a, b_p * b, c_p * b + a_p * p.g_num
        if max_input is not None and (limit is None or max_input - x0 < limit):
            if delta >= max_input - x0:
                delta = max_input - x0
                out0 += big_a * delta // (big_b + big_c * delta)
                return max_input, out0 - max_input
        if limit is None or delta <= limit:
            out0 += big_a * delta // (big_b + big_c * delta)
            return x0 + delta, out0 - x0 - delta
        if pieces[limit_hop].final:  # the pool's price limit: the furthest input it takes
            delta = max(0, limit - 1)
            out0 += big_a * delta // (big_b + big_c * delta)
            return x0 + delta, out0 - x0 - delta
        amount = limit
        if shared:
            pieces = [p.clone() if isinstance(p.leg, V3Leg) else p for p in pieces]
            shared = False
        for i, p in enumerate(pieces):
            amount = p.advance(amount, i == limit_hop)
        x0, out0 = x0 + limit, out0 + amount
    return x0, max(0, out0 - x0)


# ---- the exact optimum --------------------------------------------------------------------


def size_mixed(
    legs: Sequence[Leg], max_input: int | None = None, *, min_profit: int = 1
) -> CycleTrade | None:
    """Best input for a cycle of V2 and V3 hops (the last token out is the first in).

    None if nothing up to `max_input` makes `min_profit`. Amounts are every hop's exact
    integer output at the chosen input, as the pools compute them.
    """
    if max_input is not None and max_input <= 0:
        return None
    x_c, bound = continuous_optimum(legs, max_input)
    if x_c <= 0 or bound + len(legs) < max(min_profit, 1):
        return None
    best: tuple[int, int] | None = None  # (profit, input)

    def consider(x: int | None, first_out: int | None = None) -> None:
        """`first_out`: the first hop's exact output for x, if the caller has it."""
        nonlocal best
        if x is None or x <= 0 or (max_input is not None and x > max_input):
            return
        if first_out is None:
            amount = x
            for out in outs:
                amount = out(amount) if amount > 0 else 0
        else:
            amount = first_out
            for out in outs[1:]:
                amount = out(amount) if amount > 0 else 0
        profit = amount - x
        if best is None or profit > best[0] or (profit == best[0] and x < best[1]):
            best = (profit, x)

    path = local_path(x_c, legs)
    if path is None:
        # the optimum sits at a pool's last range end, where rounding can tip the input past
        # what the pool takes: the largest input every hop takes whole (bisection, rare)
        low, high = 0, x_c
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if path_amounts(mid, legs)[-1] > 0 else (low, mid)
        if low <= 0:
            return None
        x_c, path = low, local_path(low, legs)
        assert path is not None  # every hop takes `low` whole
    amounts, local = path
    outs = [hop.out_fn() for hop in local]
    tight: int | None = amounts[-1]  # path_least_input's answer, by the local hops
    tight_out: int | None = None  # the first hop's output for it, if its probes priced it
    for hop in reversed(local):
        if tight is not None:
            tight, tight_out = hop.least_input_out(tight)

    def aligned(i: int) -> tuple[int, ...]:
        """_fee_aligned at the optimum's input of hop i (its local hop knows the offset)."""
        hop = local[i]
        return _fee_aligned(legs[i], amounts[i], hop.offset if hop.v3 else None)

    if tight is not None and tight <= x_c:
        consider(tight, tight_out)
    else:
        consider(x_c)
    # every later hop floors: try nearby first-hop outputs u, each at its least input (the
    # first hop then wastes nothing), and keep the one that wastes least
    u_c = amounts[1]
    prices: list[Callable[[int], int | None]] = []  # the coarse search's model, if it ran
    candidates = set(range(max(1, u_c - MIDDLE_WINDOW), u_c + MIDDLE_WINDOW + 1))
    candidates.update(aligned(1))
    if len(legs) == 3 and 0 < amounts[2] * COARSE_UNITS < x_c:
        # the third hop's input z: aligned for its fee floor too, each z reached by its least
        # u (through a fine-to-coarse middle, DAI -> USDC, that wastes nothing in the middle)
        for z in (amounts[2] - 1, amounts[2] + 1, *aligned(2)):
            u = local[1].least_input(z)
            if u:
                candidates.add(u)
        if amounts[1] * COARSE_UNITS < x_c:  # the first middle token is coarse too
            hops = (local[0], local[1], local[2])  # at x_c, u_c and amounts[2]
            visited = coarse_middle_search(legs, u_c, max_input, bound, hops=hops, prices=prices)
            candidates.update(visited[-KEEP_VISITED:])
    candidates.discard(u_c)
    ordered = sorted(candidates)
    if prices and best is not None:
        ordered = _screened(ordered, prices[0], best[0], int(SCREEN_UNITS * local[2].rate))
    for u in ordered:
        consider(*local[0].least_input_out(u))
    if best is not None:
        # a V3 first hop floors its input less fee too: up to a wei of the start token, none at
        # the inputs its fee floor leaves whole (its other roundings are far finer); the one
        # just below is enough (the curve is flat over a period: make_cases(8), 387 cycles)
        for x in _fee_aligned(legs[0], best[1], local[0].offset_at(best[1]))[:1]:
            consider(x)
    if best is None or best[0] < max(min_profit, 1):
        return None
    got, amount = [], best[1]
    for out in outs:  # each hop's exact output, as path_amounts gives it
        amount = out(amount)
        got.append(amount)
    return CycleTrade(best[1], tuple(got), amount - best[1])
