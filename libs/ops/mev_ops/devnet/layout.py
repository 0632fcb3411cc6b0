"""What the devnet holds, as plain data derived from the seed: tokens, DEXes, pools, funding.

Pure: the same seed gives the same pools and depths, so `devnet up --seed N` is reproducible.
DEX B is thinner than DEX A and each pool starts a little off the reference price, so user flow
moves the two DEXes apart and arbitrage appears from the first blocks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int
    usd_price: float  # reference price; only shapes initial reserves and trade sizes


@dataclass(frozen=True)
class PoolSpec:
    dex: str
    symbol_a: str
    symbol_b: str
    amount_a: int  # raw units of symbol_a deposited at creation
    amount_b: int


# WETH first: it is the WETH9 contract; the others are DevTokens of ours.
TOKENS: tuple[TokenSpec, ...] = (
    TokenSpec("WETH", "Wrapped Ether", 18, 3_000.0),
    TokenSpec("USDC", "USD Coin (devnet)", 6, 1.0),
    TokenSpec("USDT", "Tether USD (devnet)", 6, 1.0),
    TokenSpec("DAI", "Dai Stablecoin (devnet)", 18, 1.0),
    TokenSpec("WBTC", "Wrapped BTC (devnet)", 8, 60_000.0),
)
TOKENS_BY_SYMBOL = {t.symbol: t for t in TOKENS}

# Every pair on both DEXes: triangles WETH-USDC-USDT, WETH-USDC-DAI, WETH-WBTC-USDC, USDC-USDT-...
PAIRS: tuple[tuple[str, str], ...] = (
    ("WETH", "USDC"),
    ("WETH", "USDT"),
    ("WETH", "DAI"),
    ("USDC", "USDT"),
    ("USDC", "DAI"),
    ("WETH", "WBTC"),
    ("WBTC", "USDC"),
)
DEX_NAMES = ("A", "B")
DEX_FEE_BPS = 30  # the npm UniswapV2Pair's fee (997/1000); a different fee needs other bytecode
# USD value of each side of a pool, before the seeded jitter.
DEX_DEPTH_USD = {"A": 4_000_000.0, "B": 1_500_000.0}
# Largest initial deviation of a pool from the reference price.
MAX_PRICE_OFFSET = 0.004

# Each flow user's starting holdings in USD per token (WETH is wrapped from the user's ETH).
USER_FUNDING_USD = 2_000_000.0
USER_COUNT = 8
# Token supply minted to the deployer, in whole tokens: ample for pools and users.
SUPPLY_USD = 10_000_000_000.0


def raw_amount(symbol: str, usd: float) -> int:
    """`usd` worth of `symbol` in raw units at the reference price."""
    token = TOKENS_BY_SYMBOL[symbol]
    return int(usd / token.usd_price * 10**token.decimals)


def plan_pools(seed: int) -> list[PoolSpec]:
    """Every pool of both DEXes with its initial deposit, jittered by the seed."""
    rng = random.Random(seed)
    pools = []
    for dex in DEX_NAMES:
        for a, b in PAIRS:
            depth = DEX_DEPTH_USD[dex] * rng.uniform(0.6, 1.4)
            offset = 1.0 + rng.uniform(-MAX_PRICE_OFFSET, MAX_PRICE_OFFSET)
            pools.append(PoolSpec(dex, a, b, raw_amount(a, depth), raw_amount(b, depth * offset)))
    return pools


def token_supply(symbol: str) -> int:
    return raw_amount(symbol, SUPPLY_USD)


# ---- Uniswap V3 pools (beside the V2 pairs, on both DEXes) ----

V3_FEES = (500, 3000, 10000)  # fee tiers in pips; tick spacing 10, 60, 200
# USD value of each side of each position, before the seeded jitter (DEX B thinner again).
V3_DEPTH_USD = {"A": 600_000.0, "B": 250_000.0}
# Overlapping ranges around the initial price, as (down, up) fractions of the price: narrow
# ones concentrate liquidity near the price, wide ones hold the tails, so ordinary swaps cross
# several initialized ticks.
V3_RANGES = ((0.004, 0.006), (0.02, 0.015), (0.06, 0.08), (0.25, 0.3))


@dataclass(frozen=True)
class V3PositionSpec:
    down: float  # the range starts this fraction below the initial price...
    up: float  # ...and ends this fraction above it
    usd: float  # value offered on each side (the position manager takes what fits)


@dataclass(frozen=True)
class V3PoolSpec:
    dex: str
    symbol_a: str
    symbol_b: str
    fee: int
    offset: float  # initial price = reference price * offset
    positions: tuple[V3PositionSpec, ...]


def plan_v3_pools(seed: int) -> list[V3PoolSpec]:
    """Every V3 pool of both DEXes (each pair at each fee tier), jittered by the seed.

    A generator of its own (not plan_pools'), so the V2 pools stay what they were per seed.
    """
    rng = random.Random(f"v3-{seed}")
    pools = []
    for dex in DEX_NAMES:
        for a, b in PAIRS:
            for fee in V3_FEES:
                offset = 1.0 + rng.uniform(-MAX_PRICE_OFFSET, MAX_PRICE_OFFSET)
                positions = tuple(
                    V3PositionSpec(
                        down * rng.uniform(0.7, 1.3),
                        up * rng.uniform(0.7, 1.3),
                        V3_DEPTH_USD[dex] * rng.uniform(0.5, 1.5),
                    )
                    for down, up in V3_RANGES
                )
                pools.append(V3PoolSpec(dex, a, b, fee, offset, positions))
    return pools
