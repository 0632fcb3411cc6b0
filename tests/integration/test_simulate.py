"""Simulate on a real anvil devnet (+ real NATS for the service).

- A warm EVM patched block by block from Sync logs equals a fresh fork at the same block
  (success, gas, profit) for the same bundles; and both equal the chain when the bundle is mined.
- Differential: pyrevm and the py-evm reference agree on 50 bundles recorded on the devnet.
- The service turns a crafted opportunity into a bundle whose profit equals this test's own
  V2 math; an unprofitable one and a stale one are dropped with counted reasons.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from mev_common.executor import ExecHop, decode_execute, encode_execute
from mev_common.messages import Block, Log
from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.sender import Sender
from pyrevm import EVM
from web3 import Web3

from services.simulate.engine import (
    SPEC,
    BlockEnvSpec,
    SimResult,
    TxSpec,
    run_backrun,
    run_bundle,
)
from services.simulate.pair_state import SWAP_TOPIC, SYNC_TOPIC
from services.simulate.prefetch import PoolProbe, prefetch_pool
from services.simulate.reference import (
    Prestate,
    agree,
    fetch_bundle_prestate,
    fetch_prestate,
    run_reference,
)
from services.simulate.reference_proc import ReferenceProcess
from services.simulate.warm import WarmEvm, block_env_after
from tests.support.devnet_state import deployed_anvil

CHAIN = 31337
WETH = 10**18
SWAP = function_signature_to_4byte_selector(
    "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
)
GET_RESERVES = "0x" + function_signature_to_4byte_selector("getReserves()").hex()


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


class Chain:
    def __init__(self, node: AnvilNode, base: Path) -> None:
        self.url = node.rpc_url
        self.base = base
        self.d: dict[str, Any] = json.loads((base / "deployment.json").read_text())
        self.weth = self.d["weth"]
        self.executor = self.d["executor"]["address"]
        self.bot = self.d["bot"]

    def rpc(self, method: str, params: list[Any]) -> Any:
        reply = httpx.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        ).json()
        if "error" in reply:
            raise AssertionError(reply["error"])
        return reply["result"]

    async def arpc(self, method: str, params: list[Any]) -> Any:
        return self.rpc(method, params)

    def token(self, symbol: str) -> str:
        return str(self.d["tokens"][symbol]["address"])

    def pair(self, dex: str, a: str, b: str) -> str:
        ta, tb = self.token(a), self.token(b)
        return next(
            p["address"]
            for p in self.d["pairs"]
            if p["dex"] == dex and {p["token0"], p["token1"]} == {ta, tb}
        )

    def hops(self, legs: list[tuple[str, str, str]]) -> list[ExecHop]:
        return [ExecHop(self.pair(x, a, b), self.token(a), self.token(b), 30) for x, a, b in legs]

    def reserves(self, pair: str, token_in: str, block: int) -> tuple[int, int]:
        raw = self.rpc("eth_call", [{"to": pair, "data": GET_RESERVES}, hex(block)])
        r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw[2:]))
        token0 = next(p["token0"] for p in self.d["pairs"] if p["address"] == pair)
        return (r0, r1) if token0 == token_in else (r1, r0)

    def expected_profit(self, hops: list[ExecHop], amount_in: int, block: int) -> int:
        amount = amount_in
        for hop in hops:
            amount = amount_out(amount, *self.reserves(hop.pair, hop.token_in, block))
        return amount - amount_in

    def swap(self, dex: str, path: list[str], amount_in: int, user: int = 0) -> None:
        sender = self.d["users"][user]
        sender = sender["address"] if isinstance(sender, dict) else sender
        router = next(x for x in self.d["dexes"] if x["name"] == dex)["router"]
        args = [amount_in, 0, [self.token(s) for s in path], sender, 2**40]
        data = SWAP + encode(["uint256", "uint256", "address[]", "address", "uint256"], args)
        tx = {"from": sender, "to": router, "data": "0x" + data.hex(), "gas": hex(500_000)}
        self.rpc("eth_sendTransaction", [tx])

    def mine(self) -> Block:
        """Mine one block exactly one second after the head (the env simulate assumes)."""
        head = self.block("latest")
        self.rpc("evm_setNextBlockTimestamp", [head.timestamp + 1])
        self.rpc("evm_mine", [])
        return self.block("latest")

    def block(self, tag: str | int) -> Block:
        raw = self.rpc("eth_getBlockByNumber", [hex(tag) if isinstance(tag, int) else tag, False])
        number = int(raw["number"], 16)
        logs = self.rpc(
            "eth_getLogs",
            [
                {
                    "fromBlock": hex(number),
                    "toBlock": hex(number),
                    "topics": [[SYNC_TOPIC, SWAP_TOPIC]],
                }
            ],
        )
        return Block(
            chain_id=CHAIN,
            number=number,
            hash=raw["hash"],
            parent_hash=raw["parentHash"],
            timestamp=int(raw["timestamp"], 16),
            base_fee_per_gas=int(raw["baseFeePerGas"], 16),
            gas_limit=int(raw["gasLimit"], 16),
            logs=[
                Log(
                    address=x["address"],
                    topics=x["topics"],
                    data=x["data"],
                    log_index=int(x["logIndex"], 16),
                    tx_hash=x["transactionHash"],
                )
                for x in logs
            ],
        )

    def fresh(self, block: Block) -> EVM:
        env = block_env_after(block, CHAIN, 1)
        return EVM(
            fork_url=self.url, fork_block=hex(block.number), spec_id=SPEC, env=env.pyrevm_env()
        )


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from devnet_chain(tmp_path_factory.mktemp("simulate-devnet"))


def devnet_chain(base: Path) -> Iterator[Chain]:
    """anvil with the devnet deployment, automine off (tests mine each block themselves)."""
    node, _ = deployed_anvil(base, CHAIN, 1, base / "bot.key", base / "deployment.json")
    c = Chain(node, base)
    c.rpc("evm_setAutomine", [False])
    try:
        yield c
    finally:
        node.stop()


TWO = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]
TWO_BACK = [("B", "WETH", "USDC"), ("A", "USDC", "WETH")]
THREE = [("A", "WETH", "USDC"), ("A", "USDC", "DAI"), ("B", "DAI", "WETH")]
THREE_BACK = [("A", "WETH", "DAI"), ("B", "DAI", "USDC"), ("B", "USDC", "WETH")]


def bundle_txs(c: Chain) -> list[TxSpec]:
    txs = []
    for legs in (TWO, TWO_BACK, THREE, THREE_BACK):
        for amount, flash in ((WETH, True), (3 * WETH, False), (WETH // 10, True)):
            data = encode_execute(c.hops(legs), amount, 0, flash)
            txs.append(TxSpec(c.bot, c.executor, data, 0, 2_000_000))
    return txs


def test_patched_equals_fresh_fork_and_the_chain(chain: Chain) -> None:
    c = chain
    warm = WarmEvm(c.url, CHAIN, c.executor, 1.0)
    warm.fork(c.mine())
    # several blocks of imbalancing swaps, each patched into the warm EVM
    for dex, path, size in (
        ("B", ["WETH", "USDC"], 40 * WETH),
        ("A", ["USDC", "DAI"], 20_000 * 10**6),
        ("B", ["DAI", "WETH"], 30_000 * WETH),
        ("A", ["WETH", "USDC", "DAI"], 25 * WETH),
    ):
        c.swap(dex, path, size)
        block = c.mine()
        assert block.logs, "the swap left no Sync log"
        warm.advance(block)
        assert warm.forks == 1 and warm.head == block  # patched, not reforked
        fresh = c.fresh(block)
        for tx in bundle_txs(c):
            assert warm.evm is not None
            patched = run_bundle(warm.evm, tx, c.weth, c.executor)
            exact = run_bundle(fresh, tx, c.weth, c.executor)
            assert patched == exact  # success, gas to the unit, profit to the wei
    assert warm.patched_blocks == 4 and warm.patched_pairs >= 5
    # the best bundle, sent for real in the next block, costs and earns exactly as simulated
    assert warm.evm is not None and warm.head is not None
    exact_evm = c.fresh(warm.head)
    results = [(run_bundle(exact_evm, tx, c.weth, c.executor), tx) for tx in bundle_txs(c)]
    best, tx = max(results, key=lambda r: r[0].profit if r[0].success else -1)
    assert best.success and best.profit > 0
    call = decode_execute(tx.data)
    assert best.profit == c.expected_profit(list(call.hops), call.amount_in, warm.head.number)
    sender = Sender(Web3(Web3.HTTPProvider(c.url)), load_or_create_key(c.base / "bot.key"), CHAIN)
    before = run_bundle(c.fresh(warm.head), tx, c.weth, c.executor)
    tx_hash = sender.send(c.executor, tx.data, 600_000)
    mined = c.mine()
    receipt = c.rpc("eth_getTransactionReceipt", ["0x" + bytes(tx_hash).hex()])
    assert int(receipt["status"], 16) == 1
    assert int(receipt["gasUsed"], 16) == best.gas_used == before.gas_used
    # our own trade landed: its Swap logs patch the executor's balances, no refork, and the
    # warm EVM still equals a fresh fork to the unit
    warm.advance(mined)
    assert (warm.forks, warm.executor_trades, warm.head) == (1, 1, mined)
    assert warm.evm is not None
    fresh = c.fresh(mined)
    for tx in bundle_txs(c):
        assert run_bundle(warm.evm, tx, c.weth, c.executor) == run_bundle(
            fresh, tx, c.weth, c.executor
        )
    exec_slot = warm.balance_slot(c.weth).slot(c.executor)
    assert warm.evm.storage(c.weth, exec_slot) == fresh.storage(c.weth, exec_slot)


def test_a_backrun_costs_what_the_chain_charges_after_its_victim(chain: Chain) -> None:
    """The victim and our call are two transactions on chain: what the victim touched is cold
    again for us. run_backrun models that (the victim's effect carried over cold); one pyrevm
    journal for both under-reports our gas. Checked against the receipt, victim mined first."""
    c = chain
    head = c.mine()
    warm = WarmEvm(c.url, CHAIN, c.executor, 1.0)
    warm.fork(head)
    for p in c.d["pairs"]:
        probe = PoolProbe(p["address"], p["token0"], p["token1"])
        assert asyncio.run(prefetch_pool(c.arpc, warm, probe, c.bot))
    assert warm.evm is not None
    user = c.d["users"][0]
    user = user["address"] if isinstance(user, dict) else user
    router = next(x for x in c.d["dexes"] if x["name"] == "A")["router"]
    args = [30 * WETH, 0, [c.token("WETH"), c.token("USDC")], user, 2**40]
    data = SWAP + encode(["uint256", "uint256", "address[]", "address", "uint256"], args)
    victim = TxSpec(user, router, data, 0, 500_000)
    # the cycle the victim makes profitable (plain mode: the executor pays from its WETH)
    for legs in (TWO_BACK, TWO, THREE_BACK, THREE):
        hops = c.hops(legs)
        tx = TxSpec(c.bot, c.executor, encode_execute(hops, WETH, 0, False), 0, 2_000_000)
        one_journal = run_bundle(warm.evm, tx, c.weth, c.executor, victim)
        if one_journal.success and one_journal.profit > 0:
            break
    carried = warm.carried_slots([(h.pair, h.token_in, h.token_out) for h in hops])
    assert carried is not None and len(carried) == 5 * len(hops)  # 3 slots + 2 balances a pool
    backrun = run_backrun(warm.evm, tx, c.weth, c.executor, victim, carried)
    assert backrun == run_backrun(c.fresh(head), tx, c.weth, c.executor, victim, carried)
    assert backrun.success and backrun.profit == one_journal.profit > 0
    # the reference engine runs them as two transactions of one block too, and agrees
    env = block_env_after(head, CHAIN, 1)
    prestate = asyncio.run(fetch_prestate(c.arpc, [victim, tx], head.number, env))
    assert agree(backrun, run_reference(prestate, env, tx, c.weth, c.executor, victim))
    # as simulate's reference check fetches it: the backrun traced after its victim (the
    # node takes the victim's diffMode post-state as state overrides)
    ordered = asyncio.run(fetch_bundle_prestate(c.arpc, [victim, tx], head.number, env))
    assert agree(backrun, run_reference(ordered, env, tx, c.weth, c.executor, victim))
    assert set(prestate) <= set(ordered)
    fees = {"maxPriorityFeePerGas": hex(50 * 10**9), "maxFeePerGas": hex(100 * 10**9)}
    victim_call = {"from": user, "to": router, "data": "0x" + data.hex(), "gas": hex(500_000)}
    c.rpc("eth_sendTransaction", [victim_call | fees])
    sender = Sender(Web3(Web3.HTTPProvider(c.url)), load_or_create_key(c.base / "bot.key"), CHAIN)
    tx_hash = sender.send(c.executor, tx.data, 800_000, tip=10**9)
    c.mine()
    receipt = c.rpc("eth_getTransactionReceipt", ["0x" + bytes(tx_hash).hex()])
    assert int(receipt["status"], 16) == 1 and int(receipt["transactionIndex"], 16) == 1
    assert int(receipt["gasUsed"], 16) == backrun.gas_used
    assert one_journal.gas_used < backrun.gas_used  # what BACKRUN_COLD_BIAS had to cover


def test_pyrevm_and_pyevm_agree_on_50_recorded_bundles(chain: Chain) -> None:
    c = chain
    recorded: list[tuple[Block, TxSpec]] = []
    shapes = (
        ("B", ["WETH", "USDC"], 35 * WETH),
        ("A", ["DAI", "WETH"], 50_000 * WETH),
        ("B", ["USDC", "DAI", "WETH"], 60_000 * 10**6),
        ("A", ["WETH", "USDC"], 15 * WETH),
    )
    for dex, path, size in shapes:
        c.swap(dex, path, size)
        block = c.mine()
        txs = bundle_txs(c)
        # one that must revert: a min profit no cycle can reach
        fail = decode_execute(txs[0].data)
        impossible = encode_execute(list(fail.hops), fail.amount_in, 10**24, fail.flash)
        txs.append(TxSpec(c.bot, c.executor, impossible, 0, 2_000_000))
        recorded += [(block, tx) for tx in txs[: 50 // len(shapes) + 1]]
    recorded = recorded[:50]
    assert len(recorded) == 50
    outcomes: list[SimResult] = []
    forks: dict[int, EVM] = {}
    inputs: dict[bool, tuple[Prestate, BlockEnvSpec, TxSpec, SimResult]] = {}
    for block, tx in recorded:
        env = block_env_after(block, CHAIN, 1)
        evm = forks.setdefault(block.number, c.fresh(block))
        fast = run_bundle(evm, tx, c.weth, c.executor)
        prestate = asyncio.run(fetch_prestate(c.arpc, [tx], block.number, env))
        ref = run_reference(prestate, env, tx, c.weth, c.executor)
        assert agree(fast, ref), (fast, ref)
        outcomes.append(fast)
        inputs.setdefault(fast.success, (prestate, env, tx, fast))
    assert {o.success for o in outcomes} == {True, False}
    assert any(o.success and o.profit > 0 for o in outcomes)
    # the service runs the reference in its own process (off simulate's GIL): same verdicts
    proc = ReferenceProcess()
    try:
        for prestate, env, tx, fast in inputs.values():
            ref = asyncio.run(proc.run(prestate, env, tx, c.weth, c.executor))
            assert agree(fast, ref), (fast, ref)
    finally:
        proc.close()
