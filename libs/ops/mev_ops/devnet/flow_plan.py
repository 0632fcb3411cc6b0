"""The seeded user flow as pure data: who swaps what, where, how much, with which limits.

Reproducible by construction: every choice comes from one `random.Random(seed)`, and quotes come
from a local model of the pools (the reserves at the flow's start block, updated by the flow's
own swaps), never from the live chain, so the same seed on the same start state signs the same
transactions however blocks happen to fall. Other traders (the bot) make the model drift from
the chain; the users' slippage limits then revert some swaps, as they would on a live chain.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_math import V3MathError

from mev_ops.devnet.layout import DEX_NAMES, USER_COUNT, raw_amount

# Trade size in USD: Pareto (heavy tail) from MIN_USD, capped.
MIN_USD = 300.0
MAX_USD = 150_000.0
PARETO_ALPHA = 1.2
# Share of users who pick the DEX quoting better (pulling prices together); the rest pick blindly.
INFORMED_SHARE = 0.4
TWO_POOL_PATH_SHARE = 0.3
ETH_INPUT_SHARE = 0.25  # of swaps starting from WETH: sent as ETH via swapExactETHForTokens
SLIPPAGE_BPS = (50, 100, 100, 200, 300)
TIP_GWEI_TENTHS = (1, 30)  # priority fee range, 0.1..3 gwei: fee ordering shuffles each block
DEADLINE_S = 120
# Share of swaps sent to a V3 pool (SwapRouter.exactInputSingle), drawn from a generator of its
# own: the V2 swaps of a seed stay the ones they were, with V3 swaps in between.
V3_SHARE = 0.35


@dataclass(frozen=True)
class SwapIntent:
    index: int
    user: int  # devnet account index, 1..USER_COUNT
    dex: str
    path: tuple[str, ...]  # token symbols
    amount_in: int
    min_out: int
    tip_wei: int
    deadline: int
    eth_in: bool  # pay with ETH (swapExactETHForTokens) instead of WETH
    fee: int = 0  # 0: V2 through Router02; else the V3 pool's fee, through the DEX's SwapRouter


def amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int) -> int:
    with_fee = amount_in * (10_000 - fee_bps)
    return with_fee * reserve_out // (reserve_in * 10_000 + with_fee)


class FlowPlanner:
    """Yields SwapIntents one by one, keeping its own model of every pool's reserves."""

    def __init__(
        self,
        deployment: dict[str, Any],
        reserves: dict[str, tuple[int, int]],
        seed: int,
        start_timestamp: int,
        rate: float,
        v3_pools: dict[str, V3Pool] | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self._v3_rng = random.Random(f"v3-flow-{seed}")
        self._v3 = dict(v3_pools or {})
        self._v3_specs = [p for p in deployment.get("v3_pools", []) if p["address"] in self._v3]
        self._rate = rate
        self._start = start_timestamp
        self._count = 0
        self._fee = {d["name"]: int(d["fee_bps"]) for d in deployment["dexes"]}
        self._reserves = {address: list(r) for address, r in reserves.items()}
        # (dex, symbol in, symbol out) -> (pair address, index of symbol in within the pair)
        self._legs: dict[tuple[str, str, str], tuple[str, int]] = {}
        for p in deployment["pairs"]:
            self._legs[(p["dex"], p["symbol0"], p["symbol1"])] = (p["address"], 0)
            self._legs[(p["dex"], p["symbol1"], p["symbol0"])] = (p["address"], 1)
        # Token paths on every DEX: one pool, or two pools through a middle token.
        self._single: list[tuple[str, ...]] = sorted({(a, b) for (_, a, b) in self._legs})
        self._double: list[tuple[str, ...]] = sorted(
            (a, b, c) for (a, b) in self._single for (b2, c) in self._single if b2 == b and c != a
        )

    def quote(self, dex: str, path: tuple[str, ...], amount_in: int) -> int:
        return self._walk(dex, path, amount_in, apply=False)

    def _walk(self, dex: str, path: tuple[str, ...], amount_in: int, *, apply: bool) -> int:
        """Output of `path` on `dex` in the model; with `apply`, the model takes the trade."""
        amount = amount_in
        for a, b in pairwise(path):
            address, side = self._legs[(dex, a, b)]
            r = self._reserves[address]
            out = amount_out(amount, r[side], r[1 - side], self._fee[dex])
            if apply:
                r[side] += amount
                r[1 - side] -= out
            amount = out
        return amount

    def next_swap(self) -> SwapIntent:
        if self._v3_specs and self._v3_rng.random() < V3_SHARE:
            return self._next_v3_swap()
        rng = self._rng
        path = rng.choice(self._double if rng.random() < TWO_POOL_PATH_SHARE else self._single)
        usd = min(MIN_USD * rng.paretovariate(PARETO_ALPHA), MAX_USD)
        amount_in = raw_amount(path[0], usd)
        if rng.random() < INFORMED_SHARE:
            dex = max(DEX_NAMES, key=lambda d: self.quote(d, path, amount_in))
        else:
            dex = rng.choice(DEX_NAMES)
        quoted = self.quote(dex, path, amount_in)
        slippage = rng.choice(SLIPPAGE_BPS)
        intent = SwapIntent(
            index=self._count,
            user=rng.randint(1, USER_COUNT),
            dex=dex,
            path=path,
            amount_in=amount_in,
            min_out=quoted * (10_000 - slippage) // 10_000,
            tip_wei=rng.randint(*TIP_GWEI_TENTHS) * 10**8,
            deadline=self._start + int(self._count / self._rate) + DEADLINE_S,
            eth_in=path[0] == "WETH" and rng.random() < ETH_INPUT_SHARE,
        )
        self._walk(dex, path, amount_in, apply=True)
        self._count += 1
        return intent

    def _next_v3_swap(self) -> SwapIntent:
        """One exact-input swap on a V3 pool, quoted and applied on the model of that pool."""
        rng = self._v3_rng
        spec = rng.choice(self._v3_specs)
        zero_for_one = rng.random() < 0.5
        path = (spec["symbol0"], spec["symbol1"])[:: 1 if zero_for_one else -1]
        usd = min(MIN_USD * rng.paretovariate(PARETO_ALPHA), MAX_USD)
        amount_in = raw_amount(path[0], usd)
        pool = self._v3[spec["address"]]
        try:
            result = pool.swap(zero_for_one, amount_in)
            quoted = -(result.amount1 if zero_for_one else result.amount0)
            self._v3[pool.address] = pool.after_swap(
                result.sqrt_price_x96, result.tick, result.liquidity
            )
        except V3MathError:
            quoted = 0  # the model has no liquidity that way: the swap may revert, and may not
        slippage = rng.choice(SLIPPAGE_BPS)
        intent = SwapIntent(
            index=self._count,
            user=rng.randint(1, USER_COUNT),
            dex=spec["dex"],
            path=path,
            amount_in=amount_in,
            min_out=quoted * (10_000 - slippage) // 10_000,
            tip_wei=rng.randint(*TIP_GWEI_TENTHS) * 10**8,
            deadline=self._start + int(self._count / self._rate) + DEADLINE_S,
            eth_in=False,
            fee=int(spec["fee"]),
        )
        self._count += 1
        return intent
