"""Differential: the warm EVM, patched block after block over the seeded devnet flow, equals a
fresh fork at the same block to the wei in profit and to the unit in gas, and the chain's
receipts for the trades we land.

Real anvil, the real devnet deployment, the flow's own planner and router calldata (mined one
block a second, by hand, so the test is fast and repeatable). At each head: victimless cycles
(flash and not, several sizes) and backruns of the flow swaps still pending, each run on the
warm EVM (forked once, then only patched from Sync/Swap logs, never reforked) and on a fresh
fork at that head. Every few blocks the best cycle is sent for real, first in the next block;
its receipt's gas must equal the simulation's, and its Swap logs then patch the executor's
balances. Before the warm EVM kept its patches cold this test failed on gas. A counting proxy
in front of anvil shows the warm EVM makes no RPC while patching or simulating a cycle once
the pools were prefetched (only a victim's own accounts, new to it, are fetched).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest
from mev_common.executor import ExecHop, decode_execute, encode_execute
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.flow import GAS_PER_HOP, GAS_V3_SWAP, SwapEncoder
from mev_ops.devnet.flow_plan import FlowPlanner
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.sender import GWEI, Sender
from pyrevm import EVM
from web3 import Web3

from services.simulate.engine import (
    SimResult,
    TxSpec,
    balance_of,
    carried_state,
    profit_balance,
    read_slots_at,
    run_backrun,
    run_bundle,
    victim_effects,
)
from services.simulate.prefetch import PoolProbe, prefetch_pool
from services.simulate.warm import WarmEvm
from tests.integration.test_simulate import CHAIN, WETH, Chain, devnet_chain
from tests.support.rpc_counter import CountingProxy

REPO = Path(__file__).resolve().parents[2]
BLOCKS = 52
LAND_EVERY = 3  # try to send the best cycle for real every this many blocks
SEED = 12


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from devnet_chain(tmp_path_factory.mktemp("simulate-warm-devnet"))


@dataclass
class FlowVictims:
    """The seeded flow's next swaps (V2, and V3 when the planner has V3 pools), sent to the
    mempool by its users: a head's backrun victims."""

    w3: Web3
    planner: FlowPlanner
    encoder: SwapEncoder
    users: dict[int, Sender] = field(default_factory=dict)
    v3_swaps: int = 0

    def send(self, count: int) -> list[TxSpec]:
        victims = []
        for _ in range(count):
            intent = self.planner.next_swap()
            user = self.users.setdefault(
                intent.user, Sender(self.w3, devnet_account(intent.user), CHAIN, max_fee=100 * GWEI)
            )
            to, data, value = self.encoder.encode(intent, user.address)
            gas = GAS_V3_SWAP if intent.fee else GAS_PER_HOP * (len(intent.path) - 1) + 50_000
            user.send(to, data, gas, value, intent.tip_wei, intent.tip_wei + 10**6)
            victims.append(TxSpec(user.address, to, bytes.fromhex(data[2:]), value, gas))
            self.v3_swaps += bool(intent.fee)
        return victims


def shared_runs_match(
    evm: EVM, tx: TxSpec, victim: TxSpec, carried: list[tuple[str, int]], alone: SimResult,
    c: Chain,
) -> None:  # fmt: skip
    """What the simulator does for a backrun (simulator.py): its measuring and final calldata
    run in one carried state after one victim run, the profit balance read once, equal each
    run on its own to the wei and the gas unit; the carried slots are put back afterwards."""
    call = decode_execute(tx.data)
    # the final bytes: minProfit the measured profit (it passes), or above it (it reverts)
    min_profit = alone.profit if alone.success and alone.profit > 0 else 10**30
    final = TxSpec(tx.sender, tx.to, encode_execute(list(call.hops), call.amount_in, min_profit,
                                                    call.flash), 0, tx.gas)  # fmt: skip
    before = read_slots_at(evm, carried)
    after = victim_effects(evm, victim, carried)
    if isinstance(after, SimResult):
        assert after == alone
        return
    with carried_state(evm, carried, after):
        start = profit_balance(evm, c.weth, c.executor)
        runs = [run_bundle(evm, t, c.weth, c.executor, balance_before=start) for t in (tx, final)]
    assert read_slots_at(evm, carried) == before
    assert runs == [alone, run_backrun(evm, final, c.weth, c.executor, victim, carried)]
    assert runs[1].success == (min_profit == alone.profit)


def cycles(d: dict[str, Any], weth: str) -> list[list[ExecHop]]:
    """Every 2- and 3-pool cycle from WETH back to WETH over the deployment's pairs."""
    pairs = [(p["address"], p["token0"], p["token1"]) for p in d["pairs"]]

    def other(pair: tuple[str, str, str], token: str) -> str | None:
        return pair[2] if pair[1] == token else pair[1] if pair[2] == token else None

    out: list[list[ExecHop]] = []
    for n in (2, 3):
        for route in permutations(pairs, n):
            token, hops = weth, []
            for pair in route:
                nxt = other(pair, token)
                if nxt is None:
                    break
                hops.append(ExecHop(pair[0], token, nxt, 30))
                token = nxt
            if len(hops) == n and token == weth and all(h.token_out != weth for h in hops[:-1]):
                out.append(hops)
    return out


@pytest.fixture
def proxy(chain: Chain) -> Iterator[CountingProxy]:
    counter = CountingProxy(chain.url)  # every RPC the warm EVM makes goes through it
    try:
        yield counter
    finally:
        counter.stop()


def test_warm_equals_fresh_fork_over_the_devnet_flow(chain: Chain, proxy: CountingProxy) -> None:
    c = chain
    w3 = Web3(Web3.HTTPProvider(c.url))
    head = c.mine()
    planner = FlowPlanner(c.d, {p["address"]: c.reserves(p["address"], p["token0"], head.number)
                                for p in c.d["pairs"]}, SEED, head.timestamp, 4.0)  # fmt: skip
    flow = FlowVictims(w3, planner, SwapEncoder(w3, c.d))
    bot = Sender(w3, load_or_create_key(c.base / "bot.key"), CHAIN, max_fee=200 * GWEI)
    routes = cycles(c.d, c.weth)
    assert len(routes) >= 8

    warm = WarmEvm(proxy.url, CHAIN, c.executor, 1.0)
    warm.fork(head)
    for p in c.d["pairs"]:  # what the service does at start: every known pool, off the hot path
        probe = PoolProbe(p["address"], p["token0"], p["token1"])
        assert asyncio.run(prefetch_pool(c.arpc, warm, probe, c.bot))
    assert warm.prefetched_pairs == len(c.d["pairs"])

    compared = blocks_compared = backruns = landed = 0
    hot_rpc = victim_rpc = 0  # requests while patching / simulating, after the prefetch
    outcomes: list[SimResult] = []
    for step in range(BLOCKS):
        # the flow's next swaps go to the mempool: they are this head's backrun victims
        victims = flow.send(1 + step % 3)
        bundles: list[tuple[TxSpec, TxSpec | None]] = []
        for i in range(4):
            hops = routes[(step * 4 + i) % len(routes)]
            amount, flash = ((WETH // 10, True), (WETH, True), (2 * WETH, False))[(step + i) % 3]
            tx = TxSpec(c.bot, c.executor, encode_execute(hops, amount, 0, flash), 0, 2_000_000)
            bundles.append((tx, None))
            if i < len(victims):
                bundles.append((tx, victims[i]))
        fresh = c.fresh(head)
        assert warm.evm is not None and warm.head == head
        results = []
        for tx, victim in bundles:
            calls = proxy.total()
            if victim is None:
                patched = run_bundle(warm.evm, tx, c.weth, c.executor)
                hot_rpc += proxy.total() - calls
                exact = run_bundle(fresh, tx, c.weth, c.executor)
            else:  # two transactions, as the chain runs them (what the service does)
                carried = warm.carried_slots([(h.pair, h.token_in, h.token_out)
                                              for h in decode_execute(tx.data).hops])  # fmt: skip
                assert carried is not None  # every token's mapping known from the prefetch
                patched = run_backrun(warm.evm, tx, c.weth, c.executor, victim, carried)
                # a victim's sender, balances and router: genuinely new accounts
                victim_rpc += proxy.total() - calls
                exact = run_backrun(fresh, tx, c.weth, c.executor, victim, carried)
                shared_runs_match(warm.evm, tx, victim, carried, patched, c)
            assert patched == exact, (head.number, tx, victim, patched, exact)
            compared += 1
            backruns += victim is not None
            outcomes.append(patched)
            results.append((patched, tx, victim))
        blocks_compared += 1
        # now and then, land the best victimless cycle first in the next block
        sent = None
        if step % LAND_EVERY == LAND_EVERY - 1:
            best = max((r for r in results if r[2] is None), key=lambda r: r[0].profit)
            if best[0].success and best[0].profit > 0:
                before = balance_of(fresh, c.weth, c.executor)
                tx_hash = bot.send(c.executor, best[1].data, 800_000, tip=100 * GWEI)
                sent = (best[0], "0x" + bytes(tx_hash).hex(), before)
        head = c.mine()
        if sent is not None:
            sim, tx_hash, before = sent
            receipt = c.rpc("eth_getTransactionReceipt", [tx_hash])
            assert int(receipt["status"], 16) == 1 and int(receipt["transactionIndex"], 16) == 0
            assert int(receipt["gasUsed"], 16) == sim.gas_used  # the chain charged what we said
            after = balance_of(c.fresh(head), c.weth, c.executor)
            # the executor's gain equals the simulated profit (the flow never pays it)
            assert after - before == sim.profit
            landed += 1
        calls = proxy.total()
        warm.advance(head)
        hot_rpc += proxy.total() - calls
        assert warm.forks == 1, warm.last_refork_reason  # patched, never reforked

    print(f"compared {compared} bundles ({backruns} backruns) over {blocks_compared} blocks; "
          f"{sum(o.success for o in outcomes)} succeeded, {sum(o.victim_failed for o in outcomes)}"
          f" victim reverted, landed {landed}; RPC on the hot path {hot_rpc}, for victims "
          f"{victim_rpc}")  # fmt: skip
    assert compared >= 200 and blocks_compared >= 50 and backruns >= 50
    assert compared == len(outcomes) == blocks_compared * 4 + backruns
    assert sum(o.success and o.profit > 0 for o in outcomes) >= 20
    assert sum(not o.success and not o.victim_failed for o in outcomes) >= 20  # reverts compared
    assert landed >= 3 and warm.executor_trades == landed
    assert warm.patched_blocks == BLOCKS
    # no round trip between a block and its simulations once the pools are prefetched
    assert hot_rpc == 0
