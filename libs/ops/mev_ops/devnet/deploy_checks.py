"""The deploy's proofs that the devnet routes and allowlists what it deployed: read-only calls in
one JSON-RPC batch each, run before the bot trades (a wrong init code hash would otherwise show
up as every trade refused or reverted)."""

from __future__ import annotations

from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3 import Web3

from mev_ops.devnet.sender import TxFailed, call_batch

GET_PAIR = function_signature_to_4byte_selector("getPair(address,address)")
GET_AMOUNTS_OUT = function_signature_to_4byte_selector("getAmountsOut(uint256,address[])")
IS_ALLOWED_PAIR = function_signature_to_4byte_selector("isAllowedPair(address,address,address)")
IS_ALLOWED_V3_POOL = function_signature_to_4byte_selector(
    "isAllowedV3Pool(address,address,address,uint24)"
)


def check_routing(w3: Web3, dexes: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> None:
    """Prove each router finds its own factory's pairs: the factory's pair is the CREATE2 address
    the router computes from its hard-coded init code hash, and a quote through it works (one
    JSON-RPC batch)."""
    by_name = {d["name"]: d for d in dexes}
    calls = []
    for pair in pairs:
        dex = by_name[pair["dex"]]
        tokens = [pair["token0"], pair["token1"]]
        calls.append((dex["factory"], GET_PAIR + encode(["address", "address"], tokens)))
        quote = encode(["uint256", "address[]"], [10**18, tokens])
        calls.append((dex["router"], GET_AMOUNTS_OUT + quote))
    results = call_batch(w3, calls)
    for k, pair in enumerate(pairs):
        on_chain = to_checksum_address(decode(["address"], results[2 * k])[0])
        if on_chain != pair["address"]:
            raise TxFailed(f"{pair['name']}: factory has {on_chain}, expected {pair['address']}")
        if decode(["uint256[]"], results[2 * k + 1])[0][1] <= 0:
            raise TxFailed(f"{pair['name']}: router {pair['dex']} quotes nothing")


def check_allowlist(w3: Web3, executor: str, pairs: list[dict[str, Any]]) -> None:
    """Prove the executor accepts every devnet pair (the init code hash matches the factories)."""
    calls = [
        (
            executor,
            IS_ALLOWED_PAIR + encode(["address"] * 3, [p["address"], p["token0"], p["token1"]]),
        )
        for p in pairs
    ]
    for pair, result in zip(pairs, call_batch(w3, calls), strict=True):
        if not decode(["bool"], result)[0]:
            raise TxFailed(f"{pair['name']}: the executor does not allow pair {pair['address']}")


def check_v3_allowlist(w3: Web3, executor: str, v3_pools: list[dict[str, Any]]) -> None:
    """Prove the executor accepts every devnet V3 pool (its factory and init code hash are set)."""
    calls = [
        (executor, IS_ALLOWED_V3_POOL + encode(
            ["address", "address", "address", "uint24"],
            [pool["address"], pool["token0"], pool["token1"], pool["fee"]],
        ))
        for pool in v3_pools
    ]  # fmt: skip
    for pool, result in zip(v3_pools, call_batch(w3, calls), strict=True):
        if not decode(["bool"], result)[0]:
            raise TxFailed(f"{pool['name']}: the executor does not allow pool {pool['address']}")
