"""A devnet flow of real, backrun-profitable user swaps: what a pending-trigger row times.

Why not the seeded devnet flow: most of its swaps are small and leave no backrun worth its gas
on their own (12-21 pending bundles in a 480 s bench run at 10 swaps/s; the bot earns on
block-triggered cycles there), and its 8 users send more than one swap a block, so a later swap
of a user waits behind its first ("victim queued"). Here every swap is a victim:
- $10k-$30k through one V2 WETH pool (either DEX), enough to open a cross-DEX gap several
  times the backrun's gas on the devnet's pools;
- at most one swap a block per pool pair (simulate publishes one bundle per pool a block and
  submit one trade per pool in flight: a second swap through the same pair would be dropped
  `superseded`, which times nothing);
- each from its own user (the flow's funded users, half of them each block, so a user's
  previous swap is mined before its next), at that user's next nonce, signed and sent to the
  node's public mempool with eth_sendRawTransaction: ingest sees it as it sees any user's;
- WETH in or out alternately per pair, so prices do not drift one way over the run;
- fees like the flow's users (tip 1-3 gwei, cap just above it): a backrun bidding one wei
  below the tip lands right after its victim.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.flow import FEE_HEADROOM_WEI
from mev_ops.devnet.layout import PAIRS, TOKENS_BY_SYMBOL

from bench.samples import swap_calldata
from bench.swaps import GWEI

WETH_PAIRS = tuple(p for p in PAIRS if "WETH" in p)
USD_RANGE = (10_000.0, 30_000.0)
GAS = 250_000
SEND_DELAY_S = 0.05  # after a new block: ingest and detect have the block before its swaps


@dataclass(frozen=True)
class BackrunSwap:
    user: int  # flow user index (devnet_account), 1-based
    path: tuple[str, str]  # token symbols, in -> out
    usd: float
    dex: int  # index into deployment["dexes"]
    tip_wei: int


def plan_block(
    rng: random.Random, block: int, users: int, per_block: int, flips: dict[tuple[str, str], bool]
) -> list[BackrunSwap]:
    """The swaps of the `block`-th block: `per_block` distinct WETH pairs, each from a distinct
    user of this block's half (even blocks the first half, odd blocks the second), the pair's
    direction flipping each time it is used (`flips` carries it over blocks)."""
    half = users // 2
    if not 1 <= per_block <= min(half, len(WETH_PAIRS)):
        raise ValueError(f"per_block must be 1..{min(half, len(WETH_PAIRS))}, got {per_block}")
    own = list(range(1, half + 1)) if block % 2 == 0 else list(range(half + 1, 2 * half + 1))
    swaps = []
    for user, pair in zip(
        rng.sample(own, per_block), rng.sample(WETH_PAIRS, per_block), strict=True
    ):
        flips[pair] = not flips.get(pair, False)
        a, b = pair if flips[pair] else (pair[1], pair[0])
        usd = 10 ** rng.uniform(math.log10(USD_RANGE[0]), math.log10(USD_RANGE[1]))
        tip = rng.randint(10, 30) * GWEI // 10
        swaps.append(BackrunSwap(user, (a, b), usd, rng.randrange(2), tip))
    return swaps


@dataclass
class BackrunFlowReport:
    blocks: list[int] = field(default_factory=list)  # block numbers a burst followed
    tx_hashes: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def first(self) -> int:
        return self.blocks[0] if self.blocks else 0

    @property
    def last(self) -> int:
        return self.blocks[-1] if self.blocks else 0


def run_backrun_flow(
    rpc_url: str,
    deployment: dict[str, Any],
    max_blocks: int,
    per_block: int = 3,
    seed: int = 51,
    enough: Callable[[], bool] | None = None,
) -> BackrunFlowReport:
    """Right after each of up to `max_blocks` new blocks, send that block's swaps (plan_block);
    stop early once `enough()` (checked each block)."""
    rng = random.Random(f"backrun-flow-{seed}")
    users = len(deployment["users"])
    accounts = {i: devnet_account(i) for i in range(1, users + 1)}
    tokens = deployment["tokens"]
    routers = [d["router"] for d in deployment["dexes"]]
    chain_id = int(deployment["chain_id"])
    report = BackrunFlowReport()
    flips: dict[tuple[str, str], bool] = {}
    with httpx.Client(timeout=10) as client:

        def rpc(method: str, params: list[Any]) -> Any:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            reply = client.post(rpc_url, json=body).json()
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply["result"]

        nonces = {
            i: int(rpc("eth_getTransactionCount", [a.address, "pending"]), 16)
            for i, a in accounts.items()
        }
        last = int(rpc("eth_blockNumber", []), 16)
        for k in range(max_blocks):
            if enough is not None and enough():
                break
            deadline = time.monotonic() + 10.0
            while (now := int(rpc("eth_blockNumber", []), 16)) == last:
                if time.monotonic() > deadline:
                    raise TimeoutError("no new block in 10 s")
                time.sleep(0.01)
            last = now
            report.blocks.append(now)
            time.sleep(SEND_DELAY_S)
            for swap in plan_block(rng, k, users, per_block, flips):
                account = accounts[swap.user]
                spec = TOKENS_BY_SYMBOL[swap.path[0]]
                amount = int(swap.usd / spec.usd_price * 10**spec.decimals)
                path = [tokens[s]["address"] for s in swap.path]
                tx = {
                    "chainId": chain_id, "nonce": nonces[swap.user], "to": routers[swap.dex],
                    "data": swap_calldata(amount, 0, path, account.address, 2**40), "value": 0,
                    "gas": GAS, "maxFeePerGas": swap.tip_wei + FEE_HEADROOM_WEI,
                    "maxPriorityFeePerGas": swap.tip_wei, "type": 2,
                }  # fmt: skip
                raw = "0x" + account.sign_transaction(tx).raw_transaction.hex().removeprefix("0x")
                try:
                    report.tx_hashes.append(rpc("eth_sendRawTransaction", [raw]).lower())
                    nonces[swap.user] += 1
                except RuntimeError as exc:  # counted; the user's nonce read again
                    report.rejected.append(str(exc)[:200])
                    nonces[swap.user] = int(
                        rpc("eth_getTransactionCount", [account.address, "pending"]), 16
                    )
    return report
