"""Differential over V3 pools: the warm EVM, patched block after block over the seeded devnet
flow with its V3 swaps (SwapRouter.exactInputSingle on the deployment's V3 pools), equals a fresh
fork at the same block to the wei in profit and to the unit in gas, and never reforks.

Real anvil and deployment, the flow's own planner (V2 and V3 swaps) and calldata, mined one
block a second by hand. Each block's V2 pairs are patched from its Sync/Swap logs; its V3 pools
(and our executor after a V3 trade of ours) wait for the node's diff of the block, which the
real DiffFeed fetches and applies (block_diff.py). At each head: cycles through V3 pools and
V2 pairs, chosen first among the V3 pools that changed in the block just mined, victimless and
behind the flow's pending swaps, each on the warm EVM and on a fresh fork at that head. Every
few blocks the best cycle is sent for real; its receipt's gas equals the simulation's, and our
own V3 trades come back through the block diff. Before block diffs the warm EVM reforked for
every simulation through a V3 pool changed since the fork (about one a block here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from itertools import permutations
from typing import Any

import pytest
from mev_common.executor import ExecHop, decode_execute, encode_execute
from mev_common.messages import Block, Log
from mev_ops.devnet.flow import SwapEncoder, fetch_flow_v3_pools
from mev_ops.devnet.flow_plan import FlowPlanner
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.sender import GWEI, Sender
from web3 import Web3

from services.simulate.diff_feed import DiffFeed
from services.simulate.engine import SimResult, TxSpec, balance_of, run_backrun, run_bundle
from services.simulate.prefetch import PoolProbe, prefetch_pool
from services.simulate.warm import WarmEvm
from tests.integration.test_simulate import CHAIN, WETH, Chain, devnet_chain
from tests.integration.test_simulate_warm import FlowVictims

BLOCKS = 52
PER_BLOCK = 4  # victimless cycles per head (each also behind a pending flow swap, if any)
LAND_EVERY = 3
SEED = 29


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    yield from devnet_chain(tmp_path_factory.mktemp("simulate-warm-v3-devnet"))


def full_block(c: Chain, number: int) -> Block:
    """The block with every log (ingest forwards V2 and V3 pool events alike)."""
    block = c.block(number)
    logs = c.rpc("eth_getLogs", [{"fromBlock": hex(number), "toBlock": hex(number)}])
    entries = [
        Log(address=x["address"], topics=x["topics"], data=x["data"], block_number=number,
            log_index=int(x["logIndex"], 16), tx_hash=x["transactionHash"])
        for x in logs
    ]  # fmt: skip
    return block.model_copy(update={"logs": entries})


def cycles(d: dict[str, Any], weth: str) -> list[list[ExecHop]]:
    """Every 2- and 3-pool cycle WETH -> WETH with at least one V3 pool in it."""
    pools = [(p["address"], p["token0"], p["token1"], 30, "v2") for p in d["pairs"]]
    pools += [(p["address"], p["token0"], p["token1"], p["fee"] // 100, "v3")
              for p in d["v3_pools"]]  # fmt: skip
    out: list[list[ExecHop]] = []
    for n in (2, 3):
        for route in permutations(pools, n):
            if all(p[4] == "v2" for p in route):
                continue
            token, hops = weth, []
            for address, t0, t1, fee, kind in route:
                nxt = t1 if t0 == token else t0 if t1 == token else None
                if nxt is None:
                    break
                hops.append(ExecHop(address, token, nxt, fee, kind))  # type: ignore[arg-type]
                token = nxt
            if len(hops) == n and token == weth and all(h.token_out != weth for h in hops[:-1]):
                out.append(hops)
    return out


def test_warm_equals_fresh_fork_across_v3_pool_changes(chain: Chain) -> None:
    head = full_block(chain, chain.mine().number)
    v3_pools = fetch_flow_v3_pools(chain.url, chain.d, head.number)  # runs its own loop
    asyncio.run(differential(chain, head, v3_pools))


async def differential(c: Chain, head: Block, v3_pools: dict[str, Any]) -> None:
    w3 = Web3(Web3.HTTPProvider(c.url))
    reserves = {p["address"]: c.reserves(p["address"], p["token0"], head.number)
                for p in c.d["pairs"]}  # fmt: skip
    planner = FlowPlanner(c.d, reserves, SEED, head.timestamp, 4.0, v3_pools)
    flow = FlowVictims(w3, planner, SwapEncoder(w3, c.d))
    bot = Sender(w3, load_or_create_key(c.base / "bot.key"), CHAIN, max_fee=200 * GWEI)
    routes = cycles(c.d, c.weth)
    assert len(routes) >= 8

    warm = WarmEvm(c.url, CHAIN, c.executor, 1.0)
    warm.fork(head)
    feed = DiffFeed(warm, c.arpc)
    task = asyncio.ensure_future(feed.run())
    for p in c.d["pairs"]:
        assert await prefetch_pool(
            c.arpc, warm, PoolProbe(p["address"], p["token0"], p["token1"]), c.bot
        )

    compared = backruns = landed = landed_v3 = through_changed = 0
    changed: set[str] = set()  # V3 pools with events in the block just mined
    outcomes: list[SimResult] = []
    for step in range(BLOCKS):
        victims = flow.send(1 + step % 3)
        # routes through what just changed first, then the rest in turn
        hot = [r for r in routes if any(h.pair.lower() in changed for h in r)]
        picks = (hot[step % len(hot) :] + hot[: step % len(hot)])[:2] if hot else []
        while len(picks) < PER_BLOCK:
            picks.append(routes[(step * PER_BLOCK + len(picks)) % len(routes)])
        bundles: list[tuple[list[ExecHop], TxSpec, TxSpec | None]] = []
        for i, hops in enumerate(picks):
            amount, flash = ((WETH // 10, True), (WETH, True), (2 * WETH, False))[(step + i) % 3]
            tx = TxSpec(c.bot, c.executor, encode_execute(hops, amount, 0, flash), 0, 2_000_000)
            bundles.append((hops, tx, None))
            if i < len(victims):
                bundles.append((hops, tx, victims[i]))
        fresh = c.fresh(head)
        assert warm.evm is not None and warm.head == head and not warm.pending
        results = []
        for hops, tx, victim in bundles:
            carried = None
            if victim is not None and all(h.kind == "v2" for h in hops):
                carried = warm.carried_slots([(h.pair, h.token_in, h.token_out) for h in hops])
            if carried is not None and victim is not None:  # what the simulator does
                patched = run_backrun(warm.evm, tx, c.weth, c.executor, victim, carried)
                exact = run_backrun(fresh, tx, c.weth, c.executor, victim, carried)
            else:
                patched = run_bundle(warm.evm, tx, c.weth, c.executor, victim)
                exact = run_bundle(fresh, tx, c.weth, c.executor, victim)
            assert patched == exact, (head.number, decode_execute(tx.data), victim, patched, exact)
            compared += 1
            backruns += victim is not None
            through_changed += any(h.pair.lower() in changed for h in hops)
            outcomes.append(patched)
            results.append((patched, tx, victim, hops))
        sent = None
        if step % LAND_EVERY == LAND_EVERY - 1:
            best = max((r for r in results if r[2] is None), key=lambda r: r[0].profit)
            if best[0].success and best[0].profit > 0:
                before = balance_of(fresh, c.weth, c.executor)
                sent_hash = bot.send(c.executor, best[1].data, 2_000_000, tip=100 * GWEI)
                sent = (best[0], "0x" + bytes(sent_hash).hex(), before, best[3])
        head = full_block(c, c.mine().number)
        if sent is not None:
            sim, tx_hash, before, hops = sent
            receipt = c.rpc("eth_getTransactionReceipt", [tx_hash])
            assert int(receipt["status"], 16) == 1 and int(receipt["transactionIndex"], 16) == 0
            assert int(receipt["gasUsed"], 16) == sim.gas_used
            assert balance_of(c.fresh(head), c.weth, c.executor) - before == sim.profit
            landed += 1
            landed_v3 += any(h.kind == "v3" for h in hops)
        warm.advance(head)
        feed.on_block()
        changed = set().union(*warm.pending.values()) - {c.executor.lower()}
        await feed.wait([h.pair for r in routes for h in r], 10.0)  # what a simulation awaits
        assert warm.forks == 1, warm.last_refork_reason  # patched, never reforked
    task.cancel()

    print(f"compared {compared} bundles ({backruns} backruns, {through_changed} through a V3 "
          f"pool changed in the block before) over {BLOCKS} blocks; {flow.v3_swaps} V3 user "
          f"swaps; {sum(o.success for o in outcomes)} succeeded; landed {landed} ({landed_v3} "
          f"through V3); block diffs applied {warm.diffs_applied}")  # fmt: skip
    assert compared >= 200 and backruns >= 50 and through_changed >= 50
    assert flow.v3_swaps >= 20 and warm.diffs_applied >= 20
    assert sum(o.success and o.profit > 0 for o in outcomes) >= 10
    assert sum(not o.success and not o.victim_failed for o in outcomes) >= 10
    assert landed >= 3 and landed_v3 >= 1
    assert warm.patched_blocks == BLOCKS and warm.forks == 1
