"""A float model of a 3-hop path's exact profit near one first middle amount: the coarse
search's cheap prices.

Why: the coarse search (coarse_search.py) climbs over first middle amounts u with ~90 prices a
cycle; on the exact integer hops each costs ~2.5 µs (big-integer V3 step math, three hops),
most of a 3-pool cycle's sizing time. What the climb needs from a price is the roundings it
steers by, and those are all on small integers: the V3 fee floors act on u and on the middle
output z (< 2^53 through a 6-decimal token, so exact in Python's small ints), and the middle hop's
output floor acts on a float of ~1e11 whose error is ~1e-5 of a unit. Every other part is
smooth, so it is priced as a difference from the exact price at u_ref (the constant-product
curve of each hop's current range, relative error ~1e-16 of a difference). The model is off by
well under 1e-3 of a unit of the middle token (the search's own stopping gap) except where the
middle floor sits within ~1e-5 of a unit of a step; the caller re-prices what the climb keeps on
the exact hops, so the answer stays the pools' integers. Outside the ranges the exact hops were
built on (a range end), it prices exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from mev_common.amm.v2 import FEE_DENOMINATOR as V2_FEE_DENOMINATOR
from mev_common.amm.v3_math import FEE_DENOMINATOR as V3_FEE_DENOMINATOR

if TYPE_CHECKING:
    from mev_common.amm.local_hop import LocalHop

Q96 = float(2**96)


class _Curve(NamedTuple):
    """One hop in its current range: out = base + floor(y * s / (e + s)) for s = the input
    after a V3 fee floor (V2: the input, its fee in e), valid for inputs in (low, high) and
    outputs in (base, base + max_out)."""

    e: float
    y: float
    base: int
    offset: int  # V3: the input before the range (steps before the last); V2: 0
    g_num: int  # V3: 1e6 - fee; V2: 0 (no fee floor on integers)
    s_cap: float  # the fee-floored input that reaches the range end (inf: V2)
    max_out: float  # the output at the range end, less base


def _curve(hop: LocalHop) -> _Curve | None:
    if not hop.v3:
        reserve_in, reserve_out, fee_bps = hop.leg  # type: ignore[misc]
        gamma = (V2_FEE_DENOMINATOR - fee_bps) / V2_FEE_DENOMINATOR
        return _Curve(reserve_in / gamma, float(reserve_out), 0, 0, 0, float("inf"),
                      float(reserve_out))  # fmt: skip
    step = hop.step
    sqrt_p, sqrt_t, liquidity = float(step.sqrt_p), float(step.sqrt_target), float(step.liquidity)
    if liquidity <= 0 or step.max_out <= 0:
        return None
    if step.down:  # token0 in: x = L / sqrt(P), y = L * sqrt(P)
        x, y = liquidity * Q96 / sqrt_p, liquidity * sqrt_p / Q96
        s_cap = liquidity * Q96 * (sqrt_p - sqrt_t) / (sqrt_p * sqrt_t)
    else:
        x, y = liquidity * sqrt_p / Q96, liquidity * Q96 / sqrt_p
        s_cap = liquidity * (sqrt_t - sqrt_p) / Q96
    # a margin: near the range end the exact hops decide
    return _Curve(x, y, hop.out_before, hop.offset, step.g_num, s_cap * (1 - 1e-9),
                  step.max_out * (1 - 1e-9))  # fmt: skip


def model_value(
    hops: tuple[LocalHop, LocalHop, LocalHop],
    u_ref: int,
    x_ref: int,
    profit_ref: int,
    max_input: int | None,
    exact: Callable[[int], int | None],
) -> Callable[[int], int | None]:
    """A price of u (first middle amount at its least first-hop input: output - input) by the
    model, anchored at the exact least input `x_ref` and profit `profit_ref` of `u_ref`;
    `exact(u)` where the model does not hold. `exact` itself if the model cannot anchor."""
    curves = [_curve(h) for h in hops]
    first, middle, last = curves
    if first is None or middle is None or last is None:
        return exact
    # first hop, inverted: least input = offset + k_in * u' / (y_in - u') (+ a ceil), u' = u - base
    k_first = first.e * first.y * (V3_FEE_DENOMINATOR / first.g_num if first.g_num else 1.0)
    y_first, base_first, out_cap = first.y + first.base, first.base, first.max_out + first.base
    m_e, m_y, m_base, m_off, m_g, m_cap = middle.e, middle.y, middle.base, middle.offset, \
        middle.g_num, middle.s_cap  # fmt: skip
    l_e, l_k, l_off, l_g, l_cap = last.e, last.e * last.y, last.offset, last.g_num, last.s_cap

    def middle_out(u: int) -> int | None:
        s = (u - m_off) * m_g // V3_FEE_DENOMINATOR if m_g else u
        if not 0 < s < m_cap:
            return None
        return m_base + int(m_y * s / (m_e + s))

    def last_in(z: int) -> int | None:
        b = (z - l_off) * l_g // V3_FEE_DENOMINATOR if l_g else z
        return b if 0 < b < l_cap else None

    z_ref = middle_out(u_ref)
    b_ref = last_in(z_ref) if z_ref is not None else None
    if not base_first < u_ref < out_cap or z_ref is None or b_ref is None:
        return exact  # the anchor sits at a range end
    if z_ref != hops[1].out(u_ref):
        return exact  # or on a step of the middle floor (the float is off by a unit there)
    l_ref, fee_den = l_e + b_ref, V3_FEE_DENOMINATOR
    u_gap_ref = y_first - u_ref
    cap = None if max_input is None else max_input - 2
    x_ref_f = float(x_ref)  # what int + float converts it to, once

    def value(u: int) -> int | None:
        # middle_out and last_in inlined: this runs ~60 times a cycle
        if base_first < u < out_cap:
            dx = k_first * (u - u_ref) / ((y_first - u) * u_gap_ref)
            if cap is None or x_ref_f + dx <= cap:  # else the ceil decides
                s = (u - m_off) * m_g // fee_den if m_g else u
                if 0 < s < m_cap:
                    z = m_base + int(m_y * s / (m_e + s))
                    b = (z - l_off) * l_g // fee_den if l_g else z
                    if 0 < b < l_cap:
                        return profit_ref + round(l_k * (b - b_ref) / ((l_e + b) * l_ref) - dx)
        return exact(u)

    return value
