"""Find and read the Uniswap V3 pools detect trades on, all at one block.

Which pools: only factories the executor allowlists (`v3Factories()`, the same factory and init
code hash) are traded: a route through any other pool could not execute, and an executor
without V3 support (the call reverts) gets none. When the chain's contracts start at a known
block (the devnet's deployment) the pools come from their factories' `PoolCreated` logs and
their initialized ticks from replaying their `Mint`/`Burn` logs (amm/v3_book.py), checked
against the pool's own in-range liquidity; only slot0 and liquidity are read (2 calls a pool).
Otherwise (a live chain: no enumeration exists in V3) every CREATE2 address of each factory
over the traded tokens and fee tiers is a candidate, kept if it has code, and read whole by
chain/v3_pools.py (its tick bitmap word by word: ~35-700 calls a pool, once at start). A
computed or checked CREATE2 address proves the pool is the factory's.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from mev_common.amm.v3 import TICK_SPACING, V3Pool
from mev_common.amm.v3_book import V3_BURN_TOPIC, V3_MINT_TOPIC, apply_log
from mev_common.chain.contracts import V3Dex
from mev_common.chain.pools import v3_pool_address
from mev_common.chain.rpc_pool import RpcPool
from mev_common.chain.v3_pools import fetch_v3_pools
from mev_common.messages import Log

FEE_TIERS = tuple(TICK_SPACING)  # the fee amounts a Uniswap V3 factory enables


def candidate_pools(dexes: Sequence[V3Dex], tokens: Sequence[str]) -> list[str]:
    """Every pool address the factories could have for these tokens, in a stable order."""
    out = []
    for dex in dexes:
        for a, b in combinations(sorted(tokens, key=lambda t: int(t, 16)), 2):
            out += [
                v3_pool_address(dex.factory, a, b, fee, dex.init_code_hash) for fee in FEE_TIERS
            ]
    return out


V3_FACTORIES = "0x" + function_signature_to_4byte_selector("v3Factories()").hex()
SLOT0 = "0x" + function_signature_to_4byte_selector("slot0()").hex()
LIQUIDITY = "0x" + function_signature_to_4byte_selector("liquidity()").hex()
POOL_CREATED_TOPIC = "0x" + keccak(text="PoolCreated(address,address,uint24,int24,address)").hex()


def allowlisted(dexes: Sequence[V3Dex], answer: object) -> list[V3Dex]:
    """The dexes whose (factory, init code hash) the executor's `v3Factories()` answer lists;
    none if the call failed (an executor without V3 support)."""
    if not isinstance(answer, str) or len(answer) <= 2:
        return []
    try:
        (listed,) = decode(["(address,bytes32)[]"], bytes.fromhex(answer[2:]))
    except (ValueError, DecodingError):
        return []
    allowed = {(str(f).lower(), "0x" + bytes(h).hex()) for f, h in listed}
    return [d for d in dexes if (d.factory.lower(), d.init_code_hash.lower()) in allowed]


async def fetch_v3(
    rpc: RpcPool,
    dexes: Sequence[V3Dex],
    tokens: Sequence[str],
    block: int,
    from_block: int = 0,
    logs_span: int = 50,
    executor: str | None = None,
) -> list[V3Pool]:
    """The V3 pools of `dexes` between `tokens` that exist at `block`, with their state; with
    `executor`, only those of the factories it allowlists."""
    if dexes and executor:
        (answer,) = await rpc.call_batch([("eth_call", [{"to": executor, "data": V3_FACTORIES},
                                                        hex(block)])])  # fmt: skip
        dexes = allowlisted(dexes, answer)
    if not dexes or len(tokens) < 2:
        return []
    if from_block > 0:
        return await _from_logs(rpc, dexes, tokens, block, from_block, logs_span)
    candidates = candidate_pools(dexes, tokens)
    codes = await rpc.call_batch([("eth_getCode", [a, hex(block)]) for a in candidates])
    pools = [a for a, code in zip(candidates, codes, strict=True)
             if isinstance(code, str) and len(code) > 2]  # fmt: skip
    return await fetch_v3_pools(rpc.call_batch, pools, block) if pools else []


async def _logs(rpc: RpcPool, base: dict[str, Any], start: int, end: int, span: int) -> list[Any]:
    """Every log of one filter from `start` to `end`, in spans of `span` blocks (one batch)."""
    filters = [{**base, "fromBlock": hex(a), "toBlock": hex(min(end, a + span - 1))}
               for a in range(start, end + 1, span)]  # fmt: skip
    logs: list[Any] = []
    for answer in await rpc.call_batch([("eth_getLogs", [f]) for f in filters]):
        if isinstance(answer, Exception):
            raise answer
        logs += answer
    return sorted(logs, key=lambda g: (int(g["blockNumber"], 16), int(g["logIndex"], 16)))


async def _from_logs(
    rpc: RpcPool, dexes: Sequence[V3Dex], tokens: Sequence[str], block: int, start: int, span: int
) -> list[V3Pool]:
    """When the chain's contracts start at a known block (the devnet): the pools from their
    factories' `PoolCreated` logs, their ticks replayed from their `Mint`/`Burn` logs, and only
    slot0 and liquidity read. A pool whose replayed in-range liquidity differs from the chain's
    (logs missing) is read whole instead. ~2 calls a pool instead of ~10."""
    traded = {t.lower() for t in tokens}
    created = await _logs(rpc, {"address": [d.factory for d in dexes],
                                "topics": [POOL_CREATED_TOPIC]}, start, block, span)  # fmt: skip
    pools: list[V3Pool] = []
    for log in created:
        dex = next(d for d in dexes if d.factory.lower() == log["address"].lower())
        t0, t1 = (to_checksum_address("0x" + t[-40:]) for t in log["topics"][1:3])
        fee, (spacing, address) = int(log["topics"][3], 16), decode(
            ["int24", "address"], bytes.fromhex(log["data"][2:]))  # fmt: skip
        address = to_checksum_address(address)
        if {t0.lower(), t1.lower()} <= traded and address == v3_pool_address(
            dex.factory, t0, t1, fee, dex.init_code_hash
        ):
            pools.append(V3Pool(address, t0, t1, fee, spacing, 0, 0, 0))
    if not pools:
        return []
    answers = await rpc.call_batch([("eth_call", [{"to": p.address, "data": data}, hex(block)])
                                    for p in pools for data in (SLOT0, LIQUIDITY)])  # fmt: skip
    positions = {"address": [p.address for p in pools], "topics": [[V3_MINT_TOPIC, V3_BURN_TOPIC]]}
    changes = await _logs(rpc, positions, start, block, span)
    by_address = {}
    for k, pool in enumerate(pools):
        slot0, liquidity = answers[2 * k : 2 * k + 2]
        for answer in (slot0, liquidity):
            if isinstance(answer, Exception):
                raise answer
        sqrt_price, tick = decode(["uint160", "int24"], bytes.fromhex(slot0[2:130]))
        by_address[pool.address.lower()] = (
            pool.after_swap(sqrt_price, tick, 0),
            decode(["uint128"], bytes.fromhex(liquidity[2:]))[0],
        )
    for raw in changes:
        pool, chain_liquidity = by_address[raw["address"].lower()]
        log = Log(address=pool.address, topics=raw["topics"], data=raw["data"],
                  log_index=int(raw["logIndex"], 16), tx_hash=raw["transactionHash"])  # fmt: skip
        by_address[pool.address.lower()] = (apply_log(pool, log), chain_liquidity)
    kept = [pool for pool, liquidity in by_address.values() if pool.liquidity == liquidity]
    missing = [
        pool.address for pool, liquidity in by_address.values() if pool.liquidity != liquidity
    ]
    return kept + (await fetch_v3_pools(rpc.call_batch, missing, block) if missing else [])
