"""Send the seeded user flow to the devnet and report each block: sent, mined, reverted, prices.

Arrival times are Poisson at `rate` from their own seeded generator; what each swap is comes from
FlowPlanner (flow_plan.py), so timing never changes the transactions, only when they land.
Gas is a fixed generous limit per pool hop: eth_estimateGas under-estimates the first swap of a
pair in a new second (it then writes the cumulative prices), which would revert out of gas.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.amm.v3 import V3Pool
from mev_common.chain.v3_pools import fetch_v3_pools, http_batch_caller
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import BlockIdentifier

from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.flow_plan import FlowPlanner, SwapIntent
from mev_ops.devnet.layout import USER_COUNT
from mev_ops.devnet.sender import GWEI, Sender, rpc

GAS_PER_HOP = 200_000
FLOW_WORDS = 8  # tick bitmap words either side of the price the flow's V3 model reads
GAS_V3_SWAP = 600_000  # crossing many initialized ticks costs ~30k gas each
EXACT_INPUT_SINGLE = function_signature_to_4byte_selector(
    "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
)
# Users cap their fee like a wallet does (tip plus room for the base fee, which idles at 7 wei
# on the devnet). anvil's `--order fees` ranks by max fee, not by tip: a 100 gwei cap on every
# user would put every user ahead of any bot whatever the tips. Fixed, so a seed stays
# byte-identical.
FEE_HEADROOM_WEI = 10**6
PRICE_PAIR = ("WETH", "USDC")  # the pair whose two DEX prices each block line shows
POLL_S = 0.05


@dataclass(frozen=True)
class BlockLine:
    number: int
    sent: int  # swaps sent since the previous line
    mined: int  # flow swaps in this block
    reverted: int  # of those, reverted (slippage, deadline)
    prices: dict[str, float]  # DEX name -> PRICE_PAIR price (quote per base)

    def __str__(self) -> str:
        base, quote = PRICE_PAIR
        prices = "  ".join(f"{dex} {p:,.2f}" for dex, p in self.prices.items())
        values = list(self.prices.values())
        gap = (max(values) / min(values) - 1) * 100 if values and min(values) > 0 else 0.0
        return (
            f"block {self.number}  sent {self.sent:3d}  mined {self.mined:3d}  "
            f"reverted {self.reverted:2d}  {base}/{quote} {prices}  gap {gap:.3f}%"
        )


@dataclass
class FlowReport:
    tx_hashes: list[str] = field(default_factory=list)  # in the order sent
    intents: list[SwapIntent] = field(default_factory=list)
    blocks: list[BlockLine] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # swaps the node refused to accept

    @property
    def mined(self) -> int:
        return sum(b.mined for b in self.blocks)

    @property
    def reverted(self) -> int:
        return sum(b.reverted for b in self.blocks)


def run_flow(
    rpc_url: str,
    deployment: dict[str, Any],
    seed: int,
    rate: float,
    blocks: int | None = None,
    *,
    max_swaps: int | None = None,
    stop: threading.Event | None = None,
    emit: Callable[[BlockLine], None] | None = print,
    plan_block: int | None = None,
) -> FlowReport:
    """Send swaps until `blocks` blocks have passed, or `max_swaps` were sent and mined, or
    `stop` is set. Each new block is passed to `emit` (print by default). The planner's model
    starts from `plan_block`'s pools (default: the latest block): runs that share it send the
    same swaps whatever traded since (bench's capture scenario, with and without the bot)."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    start = w3.eth.get_block("latest" if plan_block is None else plan_block)
    pair_abi = load_artifact("UniswapV2Pair").abi
    reserves = {
        p["address"]: _reserves(w3, pair_abi, p["address"], int(start["number"]))
        for p in deployment["pairs"]
    }
    v3_pools = fetch_flow_v3_pools(rpc_url, deployment, int(start["number"]))
    planner = FlowPlanner(deployment, reserves, seed, int(start["timestamp"]), rate, v3_pools)
    chain_id = int(deployment["chain_id"])
    users = {
        i: Sender(w3, devnet_account(i), chain_id, max_fee=100 * GWEI)
        for i in range(1, USER_COUNT + 1)
    }
    encoder = SwapEncoder(w3, deployment)
    price_pairs = _price_pairs(deployment)
    arrivals = random.Random(f"arrivals-{seed}")

    report = FlowReport()
    ours: set[str] = set()
    pending: set[str] = set()
    sent_since_line = 0
    last_block = int(start["number"])
    if plan_block is not None:  # start right after a block: runs sharing a plan fall alike
        last_block = _next_block(w3, int(w3.eth.block_number))
    t0 = time.monotonic()
    next_arrival = arrivals.expovariate(rate)
    while True:
        now = time.monotonic() - t0
        while next_arrival <= now and (max_swaps is None or len(report.tx_hashes) < max_swaps):
            intent = planner.next_swap()
            user = users[intent.user]
            to, data, value = encoder.encode(intent, user.address)
            gas = GAS_V3_SWAP if intent.fee else GAS_PER_HOP * (len(intent.path) - 1) + 50_000
            try:
                sent = user.send(
                    to, data, gas, value, intent.tip_wei, intent.tip_wei + FEE_HEADROOM_WEI
                )
            except (Web3RPCError, ValueError) as exc:
                # The node refused it (e.g. a nonce taken by a tx from outside this flow):
                # count it, resync the nonce and go on; the sequence is no longer the seed's.
                report.rejected.append(f"swap {intent.index}: {exc}")
                user.nonce = user.chain_nonce()
                next_arrival += arrivals.expovariate(rate)
                continue
            tx_hash = "0x" + sent.hex().removeprefix("0x")
            report.tx_hashes.append(tx_hash)
            report.intents.append(intent)
            ours.add(tx_hash)
            pending.add(tx_hash)
            sent_since_line += 1
            next_arrival += arrivals.expovariate(rate)
        latest = w3.eth.block_number
        for number in range(last_block + 1, latest + 1):
            line = _block_line(w3, number, ours, pending, sent_since_line, price_pairs, pair_abi)
            sent_since_line = 0
            report.blocks.append(line)
            if emit is not None:
                emit(line)
            if blocks is not None and len(report.blocks) >= blocks:
                return report
        last_block = max(last_block, latest)
        if max_swaps is not None and len(report.tx_hashes) >= max_swaps and not pending:
            return report
        if stop is not None and stop.is_set():
            return report
        time.sleep(max(0.0, min(POLL_S, next_arrival - (time.monotonic() - t0))))


def _next_block(w3: Web3, head: int, timeout_s: float = 30.0) -> int:
    """Wait (polling every 5 ms) until a block after `head` is mined; returns its number."""
    deadline = time.monotonic() + timeout_s
    while (latest := int(w3.eth.block_number)) <= head and time.monotonic() < deadline:
        time.sleep(0.005)
    return latest


def fetch_flow_v3_pools(rpc_url: str, deployment: dict[str, Any], block: int) -> dict[str, V3Pool]:
    """The deployment's V3 pools at `block` (none for a deployment from before V3)."""
    addresses = [p["address"] for p in deployment.get("v3_pools", [])]
    if not addresses:
        return {}
    # the pools' ranges lie within ±30 % of their prices; 8 words either side is ±(2,000 x
    # spacing) ticks, far beyond any flow swap, and a read of ~1 % of the whole bitmap
    pools = asyncio.run(
        fetch_v3_pools(http_batch_caller(rpc_url), addresses, block, words_around=FLOW_WORDS)
    )
    return {p.address: p for p in pools}


class SwapEncoder:
    """Calldata for a SwapIntent on its DEX's Router02 (V2) or SwapRouter (V3)."""

    def __init__(self, w3: Web3, deployment: dict[str, Any]) -> None:
        abi = load_artifact("UniswapV2Router02").abi
        self._routers = {
            d["name"]: w3.eth.contract(address=d["router"], abi=abi) for d in deployment["dexes"]
        }
        self._tokens = {s: t["address"] for s, t in deployment["tokens"].items()}
        self._v3_routers = {d["name"]: d["swap_router"] for d in deployment.get("v3_dexes", [])}

    def encode(self, intent: SwapIntent, user: str) -> tuple[str, str, int]:
        if intent.fee:
            params = (self._tokens[intent.path[0]], self._tokens[intent.path[1]], intent.fee,
                      user, intent.deadline, intent.amount_in, intent.min_out, 0)  # fmt: skip
            data = EXACT_INPUT_SINGLE + encode(
                ["(address,address,uint24,address,uint256,uint256,uint256,uint160)"], [params]
            )
            return self._v3_routers[intent.dex], "0x" + data.hex(), 0
        router = self._routers[intent.dex]
        path = [self._tokens[s] for s in intent.path]
        if intent.eth_in:
            args = [intent.min_out, path, user, intent.deadline]
            return (
                router.address,
                router.encode_abi("swapExactETHForTokens", args),
                intent.amount_in,
            )
        args = [intent.amount_in, intent.min_out, path, user, intent.deadline]
        return router.address, router.encode_abi("swapExactTokensForTokens", args), 0


def _price_pairs(deployment: dict[str, Any]) -> dict[str, tuple[str, bool, int]]:
    """DEX -> (PRICE_PAIR address, base is token0, decimals shift quote minus base)."""
    base, quote = PRICE_PAIR
    shift = deployment["tokens"][quote]["decimals"] - deployment["tokens"][base]["decimals"]
    out = {}
    for p in deployment["pairs"]:
        if {p["symbol0"], p["symbol1"]} == {base, quote}:
            out[p["dex"]] = (p["address"], p["symbol0"] == base, shift)
    return out


def _reserves(w3: Web3, abi: list[Any], address: str, block: BlockIdentifier) -> tuple[int, int]:
    r0, r1, _ = (
        w3.eth.contract(address=to_checksum_address(address), abi=abi)
        .functions.getReserves()
        .call(block_identifier=block)
    )
    return int(r0), int(r1)


def _block_line(
    w3: Web3,
    number: int,
    ours: set[str],
    pending: set[str],
    sent: int,
    price_pairs: dict[str, tuple[str, bool, int]],
    pair_abi: list[Any],
) -> BlockLine:
    receipts = rpc(w3, "eth_getBlockReceipts", [hex(number)])["result"] or []
    mined = reverted = 0
    for receipt in receipts:
        tx_hash = receipt["transactionHash"]
        if tx_hash in ours:
            mined += 1
            pending.discard(tx_hash)
            reverted += int(receipt["status"], 16) != 1
    prices = {}
    for dex, (address, base_is_0, shift) in price_pairs.items():
        r0, r1 = _reserves(w3, pair_abi, address, number)
        base_r, quote_r = (r0, r1) if base_is_0 else (r1, r0)
        prices[dex] = quote_r / base_r / 10**shift if base_r else 0.0
    return BlockLine(number, sent, mined, reverted, prices)
