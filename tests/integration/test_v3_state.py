"""V3 pool state kept from logs equals the chain, exactly, after 50 blocks of mixed flow and after
a reorg.

The devnet is deployed from nothing; its 42 V3 pools are read once (chain/v3_pools.py) into a
V3Book; then 50 blocks are mined, each with the devnet's own user flow (FlowPlanner: V2 swaps
through Router02 and V3 swaps through SwapRouter) plus position changes through the
NonfungiblePositionManager (new ranges: `Mint`; partial and whole withdrawals: `Burn`, some
clearing ticks). The book takes each block's logs as ingest fetches them (one eth_getLogs by
topic) and must equal a fresh read of every pool: price, tick, liquidity, every initialized
tick's gross/net liquidity and the whole bitmap. Then the chain is reverted to an earlier block
and grows a different branch; the book rewinds through its journal and must equal it again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_book import V3_BURN_TOPIC, V3_MINT_TOPIC, V3_SWAP_TOPIC, V3Book
from mev_common.chain.v3_pools import fetch_v3_pools, http_batch_caller
from mev_common.messages import Block
from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.flow import SwapEncoder
from mev_ops.devnet.flow_plan import FlowPlanner
from mev_ops.devnet.sender import GWEI, Sender
from web3 import Web3

from services.ingest.logs import LOG_TOPICS, group_logs
from services.ingest.normalize import block_from_rpc
from tests.support.devnet_state import deployed_anvil

CHAIN = 31337
BLOCKS = 50
SWAPS_PER_BLOCK = 4
FAR = 2**40
MINT_PARAMS = "(address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256)"
MINT = function_signature_to_4byte_selector(f"mint({MINT_PARAMS})")
DECREASE = function_signature_to_4byte_selector(
    "decreaseLiquidity((uint256,uint128,uint256,uint256,uint256))"
)
POSITIONS = function_signature_to_4byte_selector("positions(uint256)")
POSITION = ["uint96", "address", "address", "address", "uint24", "int24", "int24", "uint128",
            "uint256", "uint256", "uint128", "uint128"]  # fmt: skip


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, dict[str, Any]]]:
    base: Path = tmp_path_factory.mktemp("v3state")
    node, deployment = deployed_anvil(base, CHAIN, 1, base / "bot.key", base / "deployment.json")
    try:
        yield node, deployment
    finally:
        node.stop()


def read_pools(url: str, deployment: dict[str, Any], block: int) -> dict[str, V3Pool]:
    addresses = [p["address"] for p in deployment["v3_pools"]]
    pools = asyncio.run(fetch_v3_pools(http_batch_caller(url), addresses, block))
    return {p.address: p for p in pools}


class Mixer:
    """Mines blocks of user flow and position changes; says which logs it caused."""

    def __init__(self, w3: Web3, deployment: dict[str, Any], seed: int) -> None:
        self.w3, self.d = w3, deployment
        self.rng = random.Random(seed)
        head = w3.eth.get_block("latest")
        pair_abi_reserves = function_signature_to_4byte_selector("getReserves()")
        reserves = {}
        for p in deployment["pairs"]:
            raw = w3.eth.call({"to": p["address"], "data": pair_abi_reserves})
            r0, r1, _ = decode(["uint112", "uint112", "uint32"], raw)
            reserves[p["address"]] = (r0, r1)
        pools = read_pools(w3.provider.endpoint_uri, deployment, int(head["number"]))  # type: ignore[attr-defined]
        self.planner = FlowPlanner(deployment, reserves, seed, int(head["timestamp"]), 4.0, pools)
        self.encoder = SwapEncoder(w3, deployment)
        self.users = {i: Sender(w3, devnet_account(i), CHAIN) for i in range(1, 9)}
        self.lp = Sender(w3, devnet_account(0), CHAIN, max_fee=100 * GWEI, tip=GWEI)
        self.npm = {d["name"]: d["position_manager"] for d in deployment["v3_dexes"]}
        self.owned = {name: list(range(1, 85)) for name in self.npm}  # 21 pools x 4 per DEX
        self.pools = pools

    def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            for _ in range(SWAPS_PER_BLOCK):
                intent = self.planner.next_swap()
                user = self.users[intent.user]
                to, data, value = self.encoder.encode(intent, user.address)
                user.send(to, data, 600_000, value, intent.tip_wei, 100 * GWEI)
            self.position_change()
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def position_change(self) -> None:
        dex = self.rng.choice(sorted(self.npm))
        npm = self.npm[dex]
        if self.rng.random() < 0.5:  # a new range near the pool's current tick
            spec = self.rng.choice([p for p in self.d["v3_pools"] if p["dex"] == dex])
            pool = self.pools[spec["address"]]
            s = pool.tick_spacing
            centre = pool.tick // s + self.rng.randint(-30, 30)
            lower, upper = (
                (centre - self.rng.randint(1, 40)) * s,
                (centre + self.rng.randint(1, 40)) * s,
            )
            params = (spec["token0"], spec["token1"], spec["fee"], lower, upper,
                      10**18, 10**18, 0, 0, self.lp.address, FAR)  # fmt: skip
            self.lp.send(npm, MINT + encode([MINT_PARAMS], [params]), 1_000_000)
            return
        token_id = self.rng.choice(self.owned[dex])
        raw = self.w3.eth.call({"to": npm, "data": POSITIONS + encode(["uint256"], [token_id])})
        liquidity = decode(POSITION, raw)[7]
        if liquidity == 0:
            return
        whole = self.rng.random() < 0.4  # withdrawing a whole position may clear its ticks
        amount = liquidity if whole else liquidity // self.rng.randint(2, 5)
        args = encode(
            ["(uint256,uint128,uint256,uint256,uint256)"], [(token_id, amount, 0, 0, FAR)]
        )
        self.lp.send(npm, DECREASE + args, 600_000)


def blocks_with_logs(w3: Web3, first: int, last: int) -> list[Block]:
    """Blocks first..last as ingest publishes them: header plus the logs of LOG_TOPICS."""
    raw_logs = w3.provider.make_request(  # type: ignore[arg-type]
        "eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last), "topics": [LOG_TOPICS]}]
    )["result"]
    headers = [
        w3.provider.make_request("eth_getBlockByNumber", [hex(n), False])["result"]  # type: ignore[arg-type]
        for n in range(first, last + 1)
    ]
    by_hash = group_logs(raw_logs, {h["hash"] for h in headers})
    return [
        block_from_rpc(CHAIN, h).model_copy(update={"logs": by_hash[h["hash"]]}) for h in headers
    ]


def test_v3_state_from_logs_equals_the_chain_then_survives_a_reorg(
    devnet: tuple[AnvilNode, dict[str, Any]],
) -> None:
    node, deployment = devnet
    w3 = Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 60}))
    start = int(w3.eth.block_number)
    book = V3Book()
    book.load(read_pools(node.rpc_url, deployment, start).values(), start, "0x")
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    mixer = Mixer(w3, deployment, seed=7)

    mixer.mine(BLOCKS - 10)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    fork = int(w3.eth.block_number) + 1
    mixer.mine(10)
    head = int(w3.eth.block_number)
    assert head - start == BLOCKS
    blocks = blocks_with_logs(w3, start + 1, head)
    topics = [lg.topics[0] for b in blocks for lg in b.logs]
    # the flow did what this test claims: swaps, mints, burns in many blocks
    assert topics.count(V3_SWAP_TOPIC) >= 40, topics.count(V3_SWAP_TOPIC)
    assert topics.count(V3_MINT_TOPIC) >= 10 and topics.count(V3_BURN_TOPIC) >= 10
    changed = set()
    for block in blocks:
        changed |= book.apply_block(block)
    assert len(changed) >= 20
    assert book.skipped_logs == 0
    assert book.pools == read_pools(node.rpc_url, deployment, head)

    # reorg: back to `fork - 1`, then a different branch of 8 blocks
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    assert int(w3.eth.block_number) == fork - 1
    Mixer(w3, deployment, seed=99).mine(8)
    new_head = int(w3.eth.block_number)
    branch = blocks_with_logs(w3, fork, new_head)
    assert branch[0].hash != blocks[fork - start - 1].hash
    book.apply_block(branch[0].model_copy(update={"reorg": True}))
    for block in branch[1:]:
        book.apply_block(block)
    assert book.block_number == new_head
    assert book.pools == read_pools(node.rpc_url, deployment, new_head)
