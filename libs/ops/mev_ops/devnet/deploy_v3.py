"""The devnet's Uniswap V3 side: per DEX a factory, SwapRouter, QuoterV2 and position manager
from the npm artifacts, and every planned pool with liquidity in overlapping ranges.

Why the periphery runs unmodified: v3-periphery 1.4.4 hard-codes the pool init code hash, and
the npm v3-core 1.0.1 pool bytecode hashes to exactly that value (checked here at deploy time),
so the routers and the position manager find our factories' pools by CREATE2.
"""

from __future__ import annotations

import math
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from mev_common.amm.v3 import TICK_SPACING
from mev_common.amm.v3_math import MAX_TICK, MIN_TICK, get_tick_at_sqrt_ratio
from mev_common.chain.pools import UNISWAP_V3_INIT_CODE_HASH, v3_pool_address
from web3 import Web3

from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.layout import TOKENS_BY_SYMBOL, V3PoolSpec, plan_v3_pools, raw_amount
from mev_ops.devnet.sender import Sender, TxFailed, call_batch

FAR_DEADLINE = 2**40
NO_DESCRIPTOR = "0x" + "00" * 20  # tokenURI is never called on the devnet
LOG_1_0001 = math.log(1.0001)
# Calldata by eth_abi directly: web3's contract encoder costs ~10 ms a call, too slow for ~200.
CREATE_POOL = function_signature_to_4byte_selector(
    "createAndInitializePoolIfNecessary(address,address,uint24,uint160)"
)
MINT_PARAMS = "(address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256)"
MINT = function_signature_to_4byte_selector(f"mint({MINT_PARAMS})")
GET_POOL = function_signature_to_4byte_selector("getPool(address,address,uint24)")
LIQUIDITY = function_signature_to_4byte_selector("liquidity()")


def initial_sqrt_price(spec: V3PoolSpec, token0: str) -> int:
    """sqrtPriceX96 of token1 in token0 raw units at the reference price times the offset."""
    a, b = TOKENS_BY_SYMBOL[spec.symbol_a], TOKENS_BY_SYMBOL[spec.symbol_b]
    price_b_per_a = a.usd_price / b.usd_price * 10 ** (b.decimals - a.decimals) * spec.offset
    price = price_b_per_a if token0 == spec.symbol_a else 1 / price_b_per_a
    return int(math.sqrt(price) * 2**96)


def position_ticks(tick: int, spacing: int, down: float, up: float) -> tuple[int, int]:
    """A range from `down` below to `up` above the price `tick`, on the spacing, never empty."""
    lower = tick + round(math.log(1 - down) / LOG_1_0001)
    upper = tick + round(math.log(1 + up) / LOG_1_0001)
    lower, upper = lower // spacing * spacing, -(-upper // spacing) * spacing
    if upper <= lower:
        upper = lower + spacing
    low_bound, high_bound = -(-MIN_TICK // spacing) * spacing, MAX_TICK // spacing * spacing
    return max(lower, low_bound), min(upper, high_bound)


def v3_weth_needed(seed: int) -> int:
    """WETH the deployer offers to all V3 positions (an upper bound of what they take)."""
    return sum(
        raw_amount("WETH", pos.usd)
        for spec in plan_v3_pools(seed)
        if "WETH" in (spec.symbol_a, spec.symbol_b)
        for pos in spec.positions
    )


def plan_v3_contracts(
    deployer: Sender, weth: str, dex_names: tuple[str, ...], txs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Append to `txs` each DEX's factory, SwapRouter, QuoterV2 and position manager deploys."""
    pool_hash = "0x" + keccak(load_artifact("UniswapV3Pool").bytecode).hex()
    if pool_hash != UNISWAP_V3_INIT_CODE_HASH:
        raise TxFailed(
            f"npm UniswapV3Pool hashes to {pool_hash}, the periphery expects "
            f"{UNISWAP_V3_INIT_CODE_HASH}: reinstall deploy/devnet (make setup)"
        )
    dexes = []
    for name in dex_names:
        tx, factory = deployer.unsigned_deploy(load_artifact("UniswapV3Factory"), (), 6_500_000)
        txs.append(tx)
        addresses = {"factory": factory}
        for key, art, args in (
            ("swap_router", "SwapRouter", [factory, weth]),
            ("quoter", "QuoterV2", [factory, weth]),
            ("position_manager", "NonfungiblePositionManager", [factory, weth, NO_DESCRIPTOR]),
        ):
            tx, addresses[key] = deployer.unsigned_deploy(load_artifact(art), args, 6_500_000)
            txs.append(tx)
        dexes.append({"name": name, **addresses, "init_code_hash": pool_hash})
    return dexes


def plan_v3_pools_txs(
    w3: Web3,
    deployer: Sender,
    seed: int,
    tokens: dict[str, dict[str, Any]],
    dexes: list[dict[str, Any]],
    txs: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Append to `txs` the creation, initialization and positions of every planned pool.

    The deployer must already have approved each position manager for every token.
    """
    by_name = {d["name"]: d for d in dexes}
    pools = []
    for spec in plan_v3_pools(seed):
        dex = by_name[spec.dex]
        npm = dex["position_manager"]
        sym0, sym1 = sorted(
            (spec.symbol_a, spec.symbol_b), key=lambda s: int(tokens[s]["address"], 16)
        )
        t0, t1 = tokens[sym0]["address"], tokens[sym1]["address"]
        sqrt_price = initial_sqrt_price(spec, sym0)
        data = CREATE_POOL + encode(["address", "address", "uint24", "uint160"],
                                    [t0, t1, spec.fee, sqrt_price])  # fmt: skip
        txs.append(deployer.unsigned(npm, data, 6_000_000))
        tick, spacing = get_tick_at_sqrt_ratio(sqrt_price), TICK_SPACING[spec.fee]
        for pos in spec.positions:
            lower, upper = position_ticks(tick, spacing, pos.down, pos.up)
            params = (t0, t1, spec.fee, lower, upper, raw_amount(sym0, pos.usd),
                      raw_amount(sym1, pos.usd), 0, 0, deployer.address, FAR_DEADLINE)  # fmt: skip
            txs.append(deployer.unsigned(npm, MINT + encode([MINT_PARAMS], [params]), 1_000_000))
        address = v3_pool_address(dex["factory"], t0, t1, spec.fee, dex["init_code_hash"])
        pools.append({
            "dex": spec.dex, "address": address, "fee": spec.fee, "tick_spacing": spacing,
            "token0": t0, "token1": t1, "symbol0": sym0, "symbol1": sym1,
            "name": f"{spec.dex}:{sym0}/{sym1}:{spec.fee}",
        })  # fmt: skip
    return pools


def check_v3(w3: Web3, dexes: list[dict[str, Any]], pools: list[dict[str, Any]]) -> None:
    """Prove each factory's pool is at the CREATE2 address the periphery computes, and holds
    liquidity at its price (one JSON-RPC batch of eth_calls)."""
    factory = {d["name"]: d["factory"] for d in dexes}
    calls = []
    for pool in pools:
        args = encode(
            ["address", "address", "uint24"], [pool["token0"], pool["token1"], pool["fee"]]
        )
        calls += [(factory[pool["dex"]], GET_POOL + args), (pool["address"], LIQUIDITY)]
    results = call_batch(w3, calls)
    for k, pool in enumerate(pools):
        on_chain = to_checksum_address(decode(["address"], results[2 * k])[0])
        if on_chain != pool["address"]:
            raise TxFailed(f"{pool['name']}: factory has {on_chain}, expected {pool['address']}")
        if not results[2 * k + 1] or decode(["uint128"], results[2 * k + 1])[0] <= 0:
            raise TxFailed(f"{pool['name']}: no liquidity at the initial price")
