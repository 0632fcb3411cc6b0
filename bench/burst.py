"""The `make run` pattern scenario 3 reproduces: a burst of real user swaps sent to the node
right after each block (the devnet flow does this: its per-block bookkeeping holds back the
arrivals that fall due meanwhile, then sends them at once).

Burst sizes follow the flow's: Poisson at `make run`'s flow rate (config/devnet.yaml
`devnet.flow_rate`, 4 swaps per 1 s block), at most one swap per user. The size matters: a
burst smaller than a consumer's fetch batch is what nats-py's batch fetch held for up to its
0.5 s timeout (mev_common.pull); the earlier bursts of all 8 users filled the batch and hid it.

Why real signed transactions: the burst must go through the node's pending feed and ingest
(subscription, normalize, publish) before detect, which is where a burst queued. Each of the
flow's users sends one swap per block at its next nonce, so no swap waits behind its sender's.
The bench times each swap from just before its `eth_sendRawTransaction` to the first
opportunity detect publishes for it (a core NATS subscription on the opportunities subject).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from mev_common import subjects
from mev_common.bus import Bus
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.flow import FEE_HEADROOM_WEI
from mev_ops.devnet.layout import TOKENS_BY_SYMBOL

from bench.samples import swap_calldata
from bench.stack import CHAIN_ID, Stack
from bench.swaps import GWEI, _paths

MAKE_RUN_FLOW_RATE = 4.0  # swaps per 1 s block, config/devnet.yaml devnet.flow_rate
# A burst swap's fee cap over its tip, as the devnet flow's users (and wallets) set it. anvil
# (--order fees) orders by max fee, not tip: with a 100 gwei cap every burst swap was mined
# ahead of our backruns whatever it tipped, between victim and backrun (h61: 14 of 14
# reverted backruns of a 50-block run), which `make run`'s flow never does.
USER_FEE_HEADROOM_WEI = FEE_HEADROOM_WEI


def burst_sizes(blocks: int, rate: float, users: int, seed: int) -> list[int]:
    """Swaps per block: Poisson(`rate`) arrivals per 1 s block, capped at `users`, at least 1."""
    rng = random.Random(f"bursts-{seed}")
    sizes = []
    for _ in range(blocks):
        n, t = 0, rng.expovariate(rate)
        while t < 1.0:
            n, t = n + 1, t + rng.expovariate(rate)
        sizes.append(max(1, min(users, n)))
    return sizes


def _signed_bursts(stack: Stack, blocks: int, seed: int) -> list[list[tuple[str, str]]]:
    """`signed_bursts` from each flow user's pending nonce on the stack's node."""
    users = [devnet_account(i).address for i in range(1, len(stack.deployment["users"]) + 1)]
    nonces = [int(stack.rpc("eth_getTransactionCount", [a, "pending"]), 16) for a in users]
    return signed_bursts(stack.deployment, nonces, blocks, seed)


def signed_bursts(
    dep: dict[str, Any], nonces: list[int], blocks: int, seed: int
) -> list[list[tuple[str, str]]]:
    """Per block, one signed swap (raw hex, hash) from each of a burst's users at its next
    nonce (`nonces`: each user's first); burst sizes from `burst_sizes`, fee cap as the flow's."""
    rng = random.Random(seed)
    tokens = dep["tokens"]
    routers = [d["router"] for d in dep["dexes"]]
    paths = _paths()
    accounts = [devnet_account(i) for i in range(1, len(nonces) + 1)]
    bursts = []
    sizes = burst_sizes(blocks, MAKE_RUN_FLOW_RATE, len(accounts), seed)
    used = [0] * len(accounts)  # swaps each user sent so far: its next nonce
    for b in range(blocks):
        burst = []
        for k in rng.sample(range(len(accounts)), sizes[b]):
            account = accounts[k]
            path = rng.choice(paths)
            spec = TOKENS_BY_SYMBOL[path[0]]
            amount = int(10 ** rng.uniform(3.3, 4.3) / spec.usd_price * 10**spec.decimals)
            tip = rng.randint(10, 30) * GWEI // 10
            data = swap_calldata(
                amount, 0, [tokens[s]["address"] for s in path], account.address, 2**40
            )
            tx = {
                "chainId": CHAIN_ID, "nonce": nonces[k] + used[k], "to": rng.choice(routers),
                "data": data, "value": 0, "gas": 350_000,
                "maxFeePerGas": tip + USER_FEE_HEADROOM_WEI, "maxPriorityFeePerGas": tip,
                "type": 2,
            }  # fmt: skip
            signed = account.sign_transaction(tx)
            used[k] += 1
            burst.append(("0x" + signed.raw_transaction.hex().removeprefix("0x"),
                          "0x" + signed.hash.hex().removeprefix("0x")))  # fmt: skip
        bursts.append(burst)
    return bursts


async def run_bursts(
    stack: Stack,
    blocks: int,
    seed: int = 41,
    enough: Callable[[int], bool] | None = None,
) -> dict[str, Any]:
    """Send one burst right after each of up to `blocks` new blocks, stopping early once
    `enough(swaps with an opportunity so far)` says so (checked after each burst); returns the
    sent → opportunity latencies (ms) of the swaps detect published for, the counts and the
    blocks a burst followed. The bursts are signed up front for `blocks`: an early stop sends a
    prefix of the same seeded bursts."""
    bursts = await asyncio.to_thread(_signed_bursts, stack, blocks, seed)
    sent_at: dict[str, int] = {}
    first_opp: dict[str, int] = {}
    followed = 0  # blocks a burst followed
    bus = await Bus.connect(stack.nats.url, "bench-burst", attempts=3)

    async def on_opportunity(msg: Any) -> None:
        trigger = orjson.loads(msg.data).get("trigger")
        if trigger in sent_at and trigger not in first_opp:
            first_opp[trigger] = time.time_ns()

    sub = await bus.nc.subscribe(subjects.all_opportunities(CHAIN_ID), cb=on_opportunity)
    url = stack.node.rpc_url
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def rpc(method: str, params: list[Any]) -> Any:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                return (await client.post(url, json=body)).json().get("result")

            async def next_block(after: int) -> int:
                for _ in range(1_000):  # 10 s at most
                    now = int(await rpc("eth_blockNumber", []), 16)
                    if now != after:
                        return now
                    await asyncio.sleep(0.01)
                raise TimeoutError("no new block in 10 s")

            last = int(await rpc("eth_blockNumber", []), 16)
            for burst in bursts:
                last = await next_block(last)
                for raw, tx_hash in burst:  # one after the other, as the flow's loop sends
                    sent_at[tx_hash] = time.time_ns()
                    await rpc("eth_sendRawTransaction", [raw])
                followed += 1
                if enough is not None and enough(len(first_opp)):
                    break
            await asyncio.sleep(2.0)
    finally:
        await sub.unsubscribe()
        await bus.close()
    latencies = [(first_opp[h] - sent_at[h]) / 1e6 for h in first_opp]
    return {"sent": len(sent_at), "with_opportunity": len(first_opp), "latencies": latencies,
            "blocks": followed}  # fmt: skip
