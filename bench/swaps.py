"""Synthetic pending router swaps against a devnet deployment, pre-encoded as ingest publishes
them (PendingTx JSON on `mev.<chain>.mempool`).

Why synthetic but real: every payload is a Router02 `swapExactTokensForTokens` call that detect
decodes and applies to the deployment's pools (one- and two-pool paths on both DEXes, $3k–$50k),
with no slippage limit so none is discarded as a revert; encoding ahead keeps the generator's
CPU off the measured path on a 2-core machine.

Why each is a backrun candidate: every swap comes from its own sender at that sender's next
nonce (fresh accounts: nonce 0), so none waits behind another of its sender's ("victim
queued"), and tips rise by one wei a swap, so no earlier pending swap outbids it through its
pools ("crowded"). A later swap through the same pools does outbid the earlier backruns, and
detect withdraws those: that is what a real, rising-fee mempool does to them too.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

import httpx
from eth_abi import encode as encode_abi
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.messages import PendingTx, encode
from mev_common.subjects import HEADER_MSG_ID, HEADER_SEEN_NS, HEADER_TRACE
from mev_ops.devnet.layout import PAIRS, TOKENS_BY_SYMBOL

from bench.samples import swap_calldata

GWEI = 10**9
SWAP_EXACT_ETH = function_signature_to_4byte_selector(
    "swapExactETHForTokens(uint256,address[],address,uint256)"
)


def _paths() -> list[list[str]]:
    """Every one-pool path both ways, and every two-pool path through a shared token."""
    paths = [[a, b] for a, b in PAIRS] + [[b, a] for a, b in PAIRS]
    for first in list(paths):
        for second in list(paths[: 2 * len(PAIRS)]):
            if first[-1] == second[0] and second[-1] != first[0] and len(first) == 2:
                paths.append([first[0], first[1], second[1]])
    return paths


def sender(seed: int, i: int) -> str:
    """The i-th synthetic sender of a run: a fresh address (no transactions, nonce 0)."""
    return to_checksum_address(hashlib.sha256(f"bench-sender:{seed}:{i}".encode()).digest()[:20])


def pending_swaps(
    deployment: dict[str, Any], n: int, seed: int, *, eth_in: bool = False
) -> list[tuple[str, bytes]]:
    """n (tx hash, encoded PendingTx) pairs: distinct senders, nonce 0, rising tips.

    `eth_in`: `swapExactETHForTokens` from WETH (the sender needs only ETH, which
    `fund_senders` gives it), so a simulator can run the victim too."""
    rng = random.Random(seed)
    tokens = deployment["tokens"]
    routers = [d["router"] for d in deployment["dexes"]]
    paths = [p for p in _paths() if p[0] == "WETH"] if eth_in else _paths()
    out = []
    for i in range(n):
        path = rng.choice(paths)
        spec = TOKENS_BY_SYMBOL[path[0]]
        usd = 10 ** rng.uniform(3.5, 4.7)
        amount = int(usd / spec.usd_price * 10**spec.decimals)
        user = sender(seed, i)
        addresses = [tokens[s]["address"] for s in path]
        if eth_in:
            args = encode_abi(
                ["uint256", "address[]", "address", "uint256"], [0, addresses, user, 2**40]
            )
            data, value = "0x" + (SWAP_EXACT_ETH + args).hex(), amount
        else:
            data, value = swap_calldata(amount, 0, addresses, user, 2**40), 0
        tx_hash = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
        tx = PendingTx.model_validate(
            {
                "chain_id": int(deployment["chain_id"]),
                "hash": tx_hash,
                "from": user,
                "to": rng.choice(routers),
                "nonce": 0,
                "value": value,
                "gas": 450_000,
                "max_fee_per_gas": 100 * GWEI,
                "max_priority_fee_per_gas": GWEI + i,
                "input": data,
            }
        )
        out.append((tx_hash, encode(tx)))
    return out


def fund_senders(rpc_url: str, seed: int, n: int, wei: int) -> None:
    """Give the first n senders of `seed` ETH on the devnet (anvil_setBalance, batched)."""
    calls = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "anvil_setBalance",
            "params": [sender(seed, i), hex(wei)],
        }
        for i in range(n)
    ]
    for start in range(0, n, 500):
        replies = httpx.post(rpc_url, json=calls[start : start + 500], timeout=60).json()
        errors = [r["error"] for r in replies if "error" in r]
        if errors:
            raise RuntimeError(f"anvil_setBalance: {errors[0]}")


def ingest_headers(tx_hash: str) -> dict[str, str]:
    """The headers ingest puts on a pending tx, with Mev-Seen-Ns taken now."""
    return {HEADER_MSG_ID: tx_hash, HEADER_TRACE: tx_hash, HEADER_SEEN_NS: str(time.time_ns())}
