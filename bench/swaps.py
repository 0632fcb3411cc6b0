"""Synthetic pending router swaps against a devnet deployment, pre-encoded as ingest publishes
them (PendingTx JSON on `mev.<chain>.mempool`).

Why synthetic but real: every payload is a Router02 `swapExactTokensForTokens` call that detect
decodes and applies to the deployment's pools (one- and two-pool paths on both DEXes, $3k–$50k),
with no slippage limit so none is discarded as a revert; encoding ahead keeps the generator's
CPU off the measured path on a 2-core machine.

Why V3 victims too: `make run`'s devnet flow sends V3_SHARE (35 %) of its swaps as SwapRouter
`exactInputSingle` calls on one V3 pool (mev_ops.devnet.flow_plan), and a V3 victim's search
costs detect more than a V2 one's (its cycles run through V3 pools). Bench's mix is the flow's,
exactly: swap i is V3 when floor((i + 1) x share) passes an integer, so n swaps hold
floor(n x share) V3 ones, spread evenly; `v3_share=0` gives the V2-only swaps of before.

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
from fractions import Fraction
from typing import Any

import httpx
from eth_abi import encode as encode_abi
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.chain.swap_router_calls import EXACT_INPUT_SINGLE
from mev_common.messages import PendingTx, encode
from mev_common.subjects import HEADER_MSG_ID, HEADER_SEEN_NS, HEADER_TRACE
from mev_ops.devnet.flow import GAS_V3_SWAP
from mev_ops.devnet.flow_plan import V3_SHARE
from mev_ops.devnet.layout import PAIRS, TOKENS_BY_SYMBOL

from bench.samples import swap_calldata

GWEI = 10**9
SWAP_EXACT_ETH = function_signature_to_4byte_selector(
    "swapExactETHForTokens(uint256,address[],address,uint256)"
)
SINGLE = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"  # exactInputSingle
DEADLINE = 2**40


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


def is_v3(i: int, share: Fraction) -> bool:
    """Whether swap i of a run is a V3 one: floor((i + 1) x share) passes an integer there."""
    return (i + 1) * share.numerator // share.denominator > i * share.numerator // share.denominator


def pending_swaps(
    deployment: dict[str, Any],
    n: int,
    seed: int,
    *,
    eth_in: bool = False,
    v3_share: float = V3_SHARE,
    start: int = 0,
) -> list[tuple[str, bytes]]:
    """n (tx hash, encoded PendingTx) pairs: distinct senders, nonce 0, rising tips; swaps
    `start` .. `start + n - 1` of the seed's sequence, exactly (batches of one run that must not
    share a sender, a tx hash, which the stream dedups, or an earlier batch's higher tip).

    `eth_in`: from WETH paid as ETH (`swapExactETHForTokens`; a V3 swap `exactInputSingle`
    from WETH with the amount as value, which SwapRouter wraps), so the sender needs only ETH,
    which `fund_senders` gives it, and a simulator can run the victim too. `v3_share`: the
    share of SwapRouter swaps (the flow's by default; its own generator, so the V2 swaps of a
    seed stay the V2-only run's, in order)."""
    rng, v3_rng = random.Random(seed), random.Random(f"v3-{seed}")
    share = Fraction(v3_share).limit_denominator(1000)
    tokens = deployment["tokens"]
    routers = [d["router"] for d in deployment["dexes"]]
    paths = [p for p in _paths() if p[0] == "WETH"] if eth_in else _paths()
    v3_routers = {d["name"]: d["swap_router"] for d in deployment.get("v3_dexes", [])}
    v3_pools = [p for p in deployment.get("v3_pools", []) if p["dex"] in v3_routers]
    if eth_in:
        v3_pools = [p for p in v3_pools if "WETH" in (p["symbol0"], p["symbol1"])]
    if share and not v3_pools:
        raise ValueError("v3_share > 0 but the deployment has no V3 pools (v3_share=0 for none)")
    out = []
    for i in range(start + n):  # the draws of the swaps before `start` too, not their encoding
        user = sender(seed, i)
        if share and is_v3(i, share):
            to, data, value, gas = _v3_swap(v3_rng, deployment, v3_pools, v3_routers, user, eth_in)
            tx_hash = "0x" + v3_rng.getrandbits(256).to_bytes(32, "big").hex()
        else:
            data, value = _v2_swap(rng, tokens, paths, user, eth_in)
            tx_hash = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
            to, gas = rng.choice(routers), 450_000  # drawn after the hash, as before V3
        if i < start:
            continue
        tx = PendingTx.model_validate(
            {
                "chain_id": int(deployment["chain_id"]),
                "hash": tx_hash,
                "from": user,
                "to": to,
                "nonce": 0,
                "value": value,
                "gas": gas,
                "max_fee_per_gas": 100 * GWEI,
                "max_priority_fee_per_gas": GWEI + i,
                "input": data,
            }
        )
        out.append((tx_hash, encode(tx)))
    return out


def _amount(rng: random.Random, symbol: str) -> int:
    spec = TOKENS_BY_SYMBOL[symbol]
    usd = 10 ** rng.uniform(3.5, 4.7)
    return int(usd / spec.usd_price * 10**spec.decimals)


def _v2_swap(
    rng: random.Random, tokens: dict[str, Any], paths: list[list[str]], user: str, eth_in: bool
) -> tuple[str, int]:
    """(calldata, value) of a Router02 swap along one of `paths`."""
    path = rng.choice(paths)
    amount = _amount(rng, path[0])
    addresses = [tokens[s]["address"] for s in path]
    if eth_in:
        args = encode_abi(
            ["uint256", "address[]", "address", "uint256"], [0, addresses, user, DEADLINE]
        )
        data, value = "0x" + (SWAP_EXACT_ETH + args).hex(), amount
    else:
        data, value = swap_calldata(amount, 0, addresses, user, DEADLINE), 0
    return data, value


def _v3_swap(
    rng: random.Random,
    deployment: dict[str, Any],
    pools: list[dict[str, Any]],
    routers: dict[str, str],
    user: str,
    eth_in: bool,
) -> tuple[str, str, int, int]:
    """(SwapRouter, calldata, value, gas) of an `exactInputSingle` on one V3 pool, as the
    flow sends them (mev_ops.devnet.flow.SwapEncoder), either way (from WETH with `eth_in`)."""
    pool = rng.choice(pools)
    pair = (pool["symbol0"], pool["symbol1"])
    if eth_in:
        path = ("WETH", pair[1] if pair[0] == "WETH" else pair[0])
    else:
        path = pair if rng.random() < 0.5 else pair[::-1]
    amount = _amount(rng, path[0])
    token_in, token_out = (deployment["tokens"][s]["address"] for s in path)
    params = (token_in, token_out, int(pool["fee"]), user, DEADLINE, amount, 0, 0)
    data = "0x" + (EXACT_INPUT_SINGLE + encode_abi([SINGLE], [params])).hex()
    return routers[pool["dex"]], data, amount if eth_in else 0, GAS_V3_SWAP


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
