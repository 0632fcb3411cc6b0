"""Synthetic pending router swaps against a devnet deployment, pre-encoded as ingest publishes
them (PendingTx JSON on `mev.<chain>.mempool`).

Why synthetic but real: every payload is a Router02 `swapExactTokensForTokens` call that detect
decodes and applies to the deployment's pools (one- and two-pool paths on both DEXes, $1k–$50k),
with no slippage limit so none is discarded as a revert; encoding ahead keeps the generator's
CPU off the measured path on a 2-core machine.
"""

from __future__ import annotations

import random
import time
from typing import Any

from mev_common.devnet.layout import PAIRS, TOKENS_BY_SYMBOL
from mev_common.messages import PendingTx, encode
from mev_common.subjects import HEADER_MSG_ID, HEADER_SEEN_NS, HEADER_TRACE

from bench.samples import swap_calldata

GWEI = 10**9


def _paths() -> list[list[str]]:
    """Every one-pool path both ways, and every two-pool path through a shared token."""
    paths = [[a, b] for a, b in PAIRS] + [[b, a] for a, b in PAIRS]
    for first in list(paths):
        for second in list(paths[: 2 * len(PAIRS)]):
            if first[-1] == second[0] and second[-1] != first[0] and len(first) == 2:
                paths.append([first[0], first[1], second[1]])
    return paths


def pending_swaps(deployment: dict[str, Any], n: int, seed: int) -> list[tuple[str, bytes]]:
    """n (tx hash, encoded PendingTx) pairs."""
    rng = random.Random(seed)
    tokens = deployment["tokens"]
    routers = [d["router"] for d in deployment["dexes"]]
    users = [u["address"] if isinstance(u, dict) else u for u in deployment["users"]]
    paths = _paths()
    out = []
    for i in range(n):
        path = rng.choice(paths)
        spec = TOKENS_BY_SYMBOL[path[0]]
        usd = 10 ** rng.uniform(3, 4.7)
        amount = int(usd / spec.usd_price * 10**spec.decimals)
        user = rng.choice(users)
        tx_hash = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
        tx = PendingTx.model_validate(
            {
                "chain_id": int(deployment["chain_id"]),
                "hash": tx_hash,
                "from": user,
                "to": rng.choice(routers),
                "nonce": i,
                "gas": 450_000,
                "max_fee_per_gas": 100 * GWEI,
                "max_priority_fee_per_gas": rng.randint(1, 30) * GWEI // 10,
                "input": swap_calldata(
                    amount, 0, [tokens[s]["address"] for s in path], user, 2**40
                ),
            }
        )
        out.append((tx_hash, encode(tx)))
    return out


def ingest_headers(tx_hash: str) -> dict[str, str]:
    """The headers ingest puts on a pending tx, with Mev-Seen-Ns taken now."""
    return {HEADER_MSG_ID: tx_hash, HEADER_TRACE: tx_hash, HEADER_SEEN_NS: str(time.time_ns())}
