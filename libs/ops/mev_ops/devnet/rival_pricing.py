"""The devnet rival's pricing, pure: decode a pending Router02 swap, apply it, size a backrun.

A competing searcher of its own, sharing no code with detect: it prices every 2- and 3-pool
WETH cycle through a pair the victim touched on the reserves the victim leaves behind, each
cycle composed into one `A x / (B + C x)` map whose optimum is `(isqrt(A B) - B) / C`, then
walked hop by hop with the pairs' own integer rounding. Only V2 pairs: pending V3 router swaps
are not decoded (as detect does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from math import isqrt
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from mev_ops.devnet.flow_plan import amount_out

TOKENS_FOR_TOKENS = function_signature_to_4byte_selector(
    "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
)
ETH_FOR_TOKENS = function_signature_to_4byte_selector(
    "swapExactETHForTokens(uint256,address[],address,uint256)"
)


@dataclass(frozen=True)
class Pair:
    address: str
    token0: str
    token1: str
    fee_bps: int


@dataclass(frozen=True)
class Hop:
    pair: str
    token_in: str
    token_out: str
    fee_bps: int


@dataclass(frozen=True)
class VictimSwap:
    """A pending exact-input V2 swap: `amount_in` along `path` through `factory`'s pairs."""

    router: str
    path: tuple[str, ...]  # token addresses, checksummed
    amount_in: int


@dataclass(frozen=True)
class Backrun:
    hops: tuple[Hop, ...]
    amount_in: int  # WETH into the first hop
    profit: int  # WETH out of the last hop minus amount_in, gross of gas


Reserves = dict[str, tuple[int, int]]  # pair address -> (reserve0, reserve1)


def decode_swap(to: str | None, data: str, value: int, routers: set[str]) -> VictimSwap | None:
    """The V2 swap in a pending tx to one of `routers`, or None for anything else."""
    if to is None or to_checksum_address(to) not in routers:
        return None
    raw = bytes.fromhex(data.removeprefix("0x"))
    selector, args = raw[:4], raw[4:]
    if selector == TOKENS_FOR_TOKENS:
        amount_in, _, path, _, _ = decode(
            ["uint256", "uint256", "address[]", "address", "uint256"], args
        )
    elif selector == ETH_FOR_TOKENS:
        _, path, _, _ = decode(["uint256", "address[]", "address", "uint256"], args)
        amount_in = value
    else:
        return None
    if len(path) < 2 or amount_in <= 0:
        return None
    return VictimSwap(to_checksum_address(to), tuple(map(to_checksum_address, path)), amount_in)


class Market:
    """The V2 pairs of every router's factory, found by (router, token, token)."""

    def __init__(self, pairs: list[Pair], pair_router: dict[str, str]) -> None:
        self.pairs = {p.address: p for p in pairs}
        self._by_tokens = {
            (pair_router[p.address], *sorted((p.token0, p.token1))): p for p in pairs
        }

    @classmethod
    def from_deployment(cls, deployment: dict[str, Any]) -> Market:
        routers = {d["name"]: d["router"] for d in deployment["dexes"]}
        pairs = [
            Pair(p["address"], p["token0"], p["token1"], int(p["fee_bps"]))
            for p in deployment["pairs"]
        ]
        return cls(pairs, {p["address"]: routers[p["dex"]] for p in deployment["pairs"]})

    def pair_of(self, router: str, token_a: str, token_b: str) -> Pair | None:
        return self._by_tokens.get((router, *sorted((token_a, token_b))))

    def apply(self, reserves: Reserves, swap: VictimSwap) -> list[str] | None:
        """Trade `swap` on `reserves` in place; the pairs it touched, or None if a hop of its
        path is no pair we know (then nothing is changed)."""
        legs = [self.pair_of(swap.router, a, b) for a, b in pairwise(swap.path)]
        if any(p is None or p.address not in reserves for p in legs):
            return None
        amount = swap.amount_in
        touched = []
        for pair, (token_in, _) in zip(legs, pairwise(swap.path), strict=True):
            assert pair is not None
            r0, r1 = reserves[pair.address]
            if token_in == pair.token0:
                out = amount_out(amount, r0, r1, pair.fee_bps)
                reserves[pair.address] = (r0 + amount, r1 - out)
            else:
                out = amount_out(amount, r1, r0, pair.fee_bps)
                reserves[pair.address] = (r0 - out, r1 + amount)
            touched.append(pair.address)
            amount = out
        return touched

    def cycles_through(self, weth: str, touched: set[str]) -> list[tuple[Hop, ...]]:
        """Every 2- and 3-pool cycle from WETH (pools distinct) using a pair in `touched`."""
        out: list[tuple[Hop, ...]] = []
        hops_from: dict[str, list[Hop]] = {}
        for p in self.pairs.values():
            hops_from.setdefault(p.token0, []).append(Hop(p.address, p.token0, p.token1, p.fee_bps))
            hops_from.setdefault(p.token1, []).append(Hop(p.address, p.token1, p.token0, p.fee_bps))
        for first in hops_from.get(weth, []):
            for second in hops_from.get(first.token_out, []):
                if second.pair == first.pair:
                    continue
                if second.token_out == weth:
                    out.append((first, second))
                    continue
                for third in hops_from.get(second.token_out, []):
                    if third.token_out == weth and third.pair not in (first.pair, second.pair):
                        out.append((first, second, third))
        return [c for c in out if any(h.pair in touched for h in c)]


def hop_out(hop: Hop, amount: int, reserves: Reserves, market: Market) -> int:
    r0, r1 = reserves[hop.pair]
    if hop.token_in == market.pairs[hop.pair].token0:
        return amount_out(amount, r0, r1, hop.fee_bps)
    return amount_out(amount, r1, r0, hop.fee_bps)


def walk(hops: tuple[Hop, ...], amount_in: int, reserves: Reserves, market: Market) -> int:
    """What the cycle pays out for `amount_in`, with every pair's integer rounding."""
    amount = amount_in
    for hop in hops:
        amount = hop_out(hop, amount, reserves, market)
    return amount


def optimal_input(hops: tuple[Hop, ...], reserves: Reserves, market: Market) -> int:
    """The real-valued optimum of the composed cycle, floored: 0 if no input gains.

    One hop maps x to `g R_out x / (10,000 R_in + g x)` (g = 10,000 - fee in bps); two such
    maps compose to `a1 a2 x / (b1 b2 + (b2 c1 + c2 a1) x)`, so the cycle is `A x / (B + C x)`
    and the gain `A x / (B + C x) - x` peaks where `(B + C x)^2 = A B`."""
    a, b, c = 1, 1, 0
    for hop in hops:
        r0, r1 = reserves[hop.pair]
        r_in, r_out = (r0, r1) if hop.token_in == market.pairs[hop.pair].token0 else (r1, r0)
        g = 10_000 - hop.fee_bps
        a2, b2, c2 = g * r_out, 10_000 * r_in, g
        a, b, c = a * a2, b * b2, b2 * c + c2 * a
    root = isqrt(a * b)
    return max(0, (root - b) // c) if c else 0


def best_backrun(
    market: Market, reserves: Reserves, weth: str, touched: set[str], min_profit: int
) -> Backrun | None:
    """The most profitable cycle through `touched` on `reserves`, if it gains `min_profit`."""
    best: Backrun | None = None
    for hops in market.cycles_through(weth, touched):
        x = optimal_input(hops, reserves, market)
        if x <= 0:
            continue
        profit = walk(hops, x, reserves, market) - x
        if profit >= min_profit and (best is None or profit > best.profit):
            best = Backrun(hops, x, profit)
    return best


def backrun_fees(victim_tip: int, victim_max_fee: int) -> tuple[int, int]:
    """(max fee, tip) a backrun bids: its victim's max fee and one wei under its tip, never
    above them (no front-running), what our submit bids too (services/submit/fees.py): on
    fee-ordered anvil (max fee alone) the victim and the two backruns tie and arrival order
    decides."""
    return victim_max_fee, max(min(victim_tip, victim_max_fee) - 1, 0)
