"""Find and read the Uniswap V3 pools detect trades on, all at one block.

Which pools: a V3 factory cannot be enumerated (no `allPairs`), so every CREATE2 address of each
configured V3 factory over the pairs of tokens detect trades and the factory's fee tiers is a
candidate, kept if it has code (one `eth_getCode` batch). A computed address also proves the pool
is the factory's. State: chain/v3_pools.py. Its initialized ticks come from the pools' `Mint`
logs since `from_block` when the deployment says where the chain's contracts start (the devnet:
a few `eth_getLogs` spans of `max_logs_block_range`, one batch); otherwise every word of the tick
bitmap is read (exact as well, ~35-700 calls a pool).

Only factories the executor allowlists (`v3Factories()`, the same factory and init code hash)
are traded: a route through any other pool could not execute, and an executor without V3
support (the call reverts) gets none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector
from mev_common.amm.v3 import TICK_SPACING, V3Pool
from mev_common.amm.v3_book import V3_MINT_TOPIC
from mev_common.chain.contracts import V3Dex
from mev_common.chain.pools import v3_pool_address
from mev_common.chain.rpc_pool import RpcPool
from mev_common.chain.v3_pools import fetch_v3_pools

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


def _signed24(topic: str) -> int:
    value = int(topic, 16) & ((1 << 24) - 1)
    return value - (1 << 24) if value >> 23 else value


def ticks_from_mints(logs: Sequence[dict[str, Any]]) -> dict[str, set[int]]:
    """Pool -> every tick a `Mint` used (its lower and upper tick, the indexed topics 2, 3)."""
    ticks: dict[str, set[int]] = defaultdict(set)
    for log in logs:
        topics = log.get("topics") or []
        if len(topics) == 4 and topics[0] == V3_MINT_TOPIC:
            address = str(log["address"]).lower()
            ticks[address].update((_signed24(topics[2]), _signed24(topics[3])))
    return ticks


V3_FACTORIES = "0x" + function_signature_to_4byte_selector("v3Factories()").hex()


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
    candidates = candidate_pools(dexes, tokens)
    codes = await rpc.call_batch([("eth_getCode", [a, hex(block)]) for a in candidates])
    pools = [a for a, code in zip(candidates, codes, strict=True)
             if isinstance(code, str) and len(code) > 2]  # fmt: skip
    if not pools:
        return []
    hints = None
    if from_block > 0:
        filters = [
            {"fromBlock": hex(start), "toBlock": hex(min(block, start + logs_span - 1)),
             "address": pools, "topics": [V3_MINT_TOPIC]}
            for start in range(from_block, block + 1, logs_span)
        ]  # fmt: skip
        answers = await rpc.call_batch([("eth_getLogs", [f]) for f in filters])
        logs = []
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
            logs += answer
        by_pool = ticks_from_mints(logs)
        hints = {pool: by_pool.get(pool.lower(), set()) for pool in pools}
    return await fetch_v3_pools(rpc.call_batch, pools, block, tick_hints=hints)
