"""Simulate on V3 and mixed V2/V3 routes (issue 13), on a real anvil with the real V3 pools.

An opportunity with V3 hops goes through the Simulator (calldata with V3 fee words, warm pyrevm
fork, decision), the bundle is signed and mined in the block simulate assumed, and its receipt's
gas equals the bundle's simulated gas to the unit and the executor's WETH grows by exactly the
simulated profit (which equals our independent models' profit). Submit's gate accepts the bundle
against the deployment's V3 factories. A block with V3 pool events (a user's or our own trade)
is patched into the warm EVM from the node's diff of that block (no refork); without block diffs
(a latest-only RPC) a simulation through a changed pool reforks.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from mev_common.chain.contracts import read_deployment
from mev_common.chain.rpc_blocks import block_from_rpc
from mev_common.messages import Block, Log, Opportunity
from mev_common.settings import Settings, load_settings
from mev_ops.devnet.flow import EXACT_INPUT_SINGLE

from services.simulate.block_diff import TRACE_METHOD, parse_block_diff, trace_params
from services.simulate.engine import balance_of, read_slots_at
from services.simulate.prefetch import PoolProbe, existing, prefetch_pool, v3_candidates
from services.simulate.prefetch_queue import PrefetchQueue
from services.simulate.quarantine import Quarantine
from services.simulate.simulator import Simulator, Verdict
from services.simulate.warm import WarmEvm
from services.submit.decide import ChainHead, Policy, SendPlan, decide
from services.submit.limits import Spend
from tests.integration.devnet.conftest import CHAIN_ID, Devnet, devnet_at, reverted_after
from tests.integration.devnet.v3_routes import Leg, expected_outputs, v2_spec, v3_spec
from tests.support.stack import write_config

WETH = 10**18
GWEI = 10**9
SWAP_PARAMS = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"
ROUTES = {  # (legs, amount in): profitable on the devnet's seed-1 prices
    "v3-v3": ([Leg("A:WETH/USDC:500", "WETH", "USDC"), Leg("B:WETH/USDC:500", "USDC", "WETH")],
              5 * WETH),
    "v2-v3-v3": ([Leg("A:WETH/USDC", "WETH", "USDC"), Leg("A:USDC/USDT:500", "USDC", "USDT"),
                  Leg("B:WETH/USDT:500", "USDT", "WETH")], WETH),
}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devnet, Path]]:
    base = tmp_path_factory.mktemp("simulate-v3")
    with devnet_at(base) as devnet:
        yield devnet, base


@pytest.fixture
def devnet(world: tuple[Devnet, Path]) -> Iterator[Devnet]:
    """Each test starts from the deployed state (its trade takes the opportunity)."""
    with reverted_after(world[0]) as devnet:
        yield devnet


def head_block(devnet: Devnet) -> Block:
    raw = devnet.rpc("eth_getBlockByNumber", ["latest", False])
    block = block_from_rpc(CHAIN_ID, raw)
    logs = devnet.rpc("eth_getLogs", [{"fromBlock": raw["number"], "toBlock": raw["number"]}])
    entries = [
        Log(address=x["address"], topics=x["topics"], data=x["data"],
            log_index=int(x["logIndex"], 16), tx_hash=x["transactionHash"])
        for x in logs
    ]  # fmt: skip
    return block.model_copy(update={"logs": entries})


def opportunity(devnet: Devnet, legs: list[Leg], amount: int, head: Block) -> Opportunity:
    tokens = devnet.deployment["tokens"]
    outs = expected_outputs(devnet, legs, amount)
    hops, into = [], amount
    for leg, out in zip(legs, outs, strict=True):
        spec = v3_spec(devnet, leg.pool) if leg.v3 else v2_spec(devnet, leg.pool)
        hops.append({
            "kind": "v3" if leg.v3 else "v2", "pool": spec["address"],
            "token_in": tokens[leg.token_in]["address"],
            "token_out": tokens[leg.token_out]["address"],
            "fee_bps": spec["fee"] // 100 if leg.v3 else 30, "amount_in": into, "amount_out": out,
        })  # fmt: skip
        into = out
    return Opportunity.model_validate({
        "id": f"v3-{head.number}-{len(legs)}", "chain_id": CHAIN_ID,
        "strategy": "cyclic_arbitrage", "trigger": "0x" + "ab" * 32,
        "block_number": head.number, "block_hash": head.hash, "hops": hops, "amount_in": amount,
        "profit_token": tokens["WETH"]["address"], "expected_profit": outs[-1] - amount,
        "max_fee_per_gas": 2 * GWEI, "deadline_block": head.number + 2,
    })  # fmt: skip


def apply_block_diff(devnet: Devnet, warm: WarmEvm, block: Block) -> None:
    """What diff_feed does off the hot path: the node's diff of `block`, applied."""
    raw = devnet.rpc(TRACE_METHOD, trace_params(block.number))
    assert warm.apply_diff(parse_block_diff(block.number, raw))


def warm_simulator(
    devnet: Devnet, config_dir: Path, flash: bool
) -> tuple[Settings, Block, WarmEvm, Simulator]:
    """Settings (flash or not), the head block, an EVM forked at it and a simulator on it."""
    config = write_config(config_dir, "nats://127.0.0.1:1", CHAIN_ID,
                          contracts={"deployment_file": str(devnet.deployment_path)},
                          simulate={"flash": flash})  # fmt: skip
    settings = load_settings(config)
    head = head_block(devnet)
    warm = WarmEvm(devnet.node.rpc_url, CHAIN_ID, devnet.executor.address, 1.0)
    warm.fork(head)
    bot, weth = devnet.deployment["bot"], devnet.deployment["weth"]
    return settings, head, warm, Simulator(settings, warm, bot, weth, Quarantine(3, 60, 60))


@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_a_v3_bundle_costs_and_earns_exactly_what_simulate_said(
    world: tuple[Devnet, Path], devnet: Devnet, route: str, flash: bool
) -> None:
    settings, head, warm, simulator = warm_simulator(devnet, world[1] / f"{route}-{flash}", flash)
    executor = devnet.executor.address
    legs, amount = ROUTES[route]
    opp = opportunity(devnet, legs, amount, head)
    verdict = simulator.simulate(opp, time.monotonic())
    bundle = verdict.bundle
    assert verdict.reason == "published" and bundle is not None, verdict
    assert bundle.simulated_profit == opp.expected_profit > 0  # simulate == our models
    assert bundle.flash is flash
    # submit's gate signs it: every V3 pool is the deployment's V3 factories' CREATE2 pool
    policy = Policy.from_settings(settings, read_deployment(devnet.deployment_path, CHAIN_ID))
    plan = decide(bundle, policy, ChainHead(head.number, head.base_fee_per_gas), Spend())
    assert isinstance(plan, SendPlan), plan
    assert plan.pools == {h.pool for h in opp.hops}
    # mined in the block simulate assumed (head + 1, one second later)
    devnet.rpc("evm_setNextBlockTimestamp", [head.timestamp + 1])
    before = devnet.balance("WETH", executor)
    sender = devnet.bot()
    tx = sender.send(executor, bytes.fromhex(bundle.data[2:]), bundle.gas_limit,
                     max_fee=plan.max_fee_per_gas, tip=plan.max_priority_fee_per_gas)  # fmt: skip
    receipt = devnet.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1 and receipt["blockNumber"] == head.number + 1
    assert receipt["gasUsed"] == bundle.simulated_gas_used
    assert devnet.balance("WETH", executor) - before == bundle.simulated_profit
    # our own trade went through V3 pools: its pools and our balances wait for the block's
    # diff (every route waits: all read our balances), then equal the chain's, with no refork
    mined = head_block(devnet)
    warm.advance(mined)
    assert (warm.forks, warm.head) == (1, mined)
    assert warm.waits([]) and warm.pending[mined.number] >= {executor.lower()}
    apply_block_diff(devnet, warm, mined)
    assert (warm.forks, warm.pending, warm.diffs_applied) == (1, {}, 1)
    assert warm.evm is not None
    for symbol in ("WETH", "USDC", "USDT"):
        token = devnet.deployment["tokens"][symbol]["address"]
        assert balance_of(warm.evm, token, executor) == devnet.balance(symbol, executor)
    for leg in legs:
        if leg.v3:
            pool = v3_spec(devnet, leg.pool)["address"]
            slot0 = devnet.rpc("eth_getStorageAt", [pool, "0x0", hex(mined.number)])
            assert read_slots_at(warm.evm, [(pool, 0)]) == [int(slot0, 16)]


@pytest.mark.parametrize("diffs", [True, False], ids=["block-diff", "no-diffs-refork"])
def test_a_user_v3_swap_is_patched_from_the_block_diff_or_reforked_without_one(
    world: tuple[Devnet, Path], devnet: Devnet, diffs: bool
) -> None:
    """A block with a user's SwapRouter swap patches (no refork): V2 routes stay warm. The
    swapped pool waits for the block's diff, then the simulation through it runs warm; without
    block diffs it reforks first. Either way it lands exactly as simulated."""
    _, head, warm, simulator = warm_simulator(devnet, world[1] / f"user-swap-{diffs}", flash=True)
    warm.diffs = diffs
    executor = devnet.executor.address
    # a user buys WETH with 20,000 USDC on A's 500-pip pool: WETH dearer there
    tokens, user = devnet.deployment["tokens"], devnet.user(3)
    dex = next(x for x in devnet.deployment["v3_dexes"] if x["name"] == "A")
    params = (tokens["USDC"]["address"], tokens["WETH"]["address"], 500, user.address,
              2**40, 20_000 * 10**6, 0, 0)  # fmt: skip
    devnet.rpc("evm_setNextBlockTimestamp", [head.timestamp + 1])
    swap = user.send(dex["swap_router"], EXACT_INPUT_SINGLE + encode([SWAP_PARAMS], [params]),
                     600_000)  # fmt: skip
    assert devnet.w3.eth.wait_for_transaction_receipt(swap)["status"] == 1
    block = head_block(devnet)
    warm.advance(block)
    pool = v3_spec(devnet, "A:WETH/USDC:500")["address"]
    changed = {pool.lower()}
    assert (warm.forks, warm.head) == (1, block)
    assert (warm.dirty_v3, warm.pending) == ((set(), {block.number: changed}) if diffs
                                             else (changed, {}))  # fmt: skip
    # a V2-only route does not touch it: no refork, no wait
    v2_route = [Leg("A:WETH/USDC", "WETH", "USDC"), Leg("B:WETH/USDC", "USDC", "WETH")]
    assert not warm.waits([])
    simulator.simulate(opportunity(devnet, v2_route, WETH, block), time.monotonic())
    assert warm.forks == 1
    legs, amount = ROUTES["v3-v3"]
    opp = opportunity(devnet, legs, amount, block)
    if diffs:
        assert warm.waits([pool])
        apply_block_diff(devnet, warm, block)
    verdict = simulator.simulate(opp, time.monotonic())
    if diffs:
        assert warm.forks == 1 and warm.diffs_applied == 1
    else:
        assert warm.forks == 2 and warm.last_refork_reason == f"V3 pool {pool} changed"
    assert not warm.dirty_v3 and not warm.pending
    bundle = verdict.bundle
    assert verdict.reason == "published" and bundle is not None, verdict
    assert bundle.simulated_profit == opp.expected_profit > 0
    devnet.rpc("evm_setNextBlockTimestamp", [block.timestamp + 1])
    before = devnet.balance("WETH", executor)
    tx = devnet.bot().send(executor, bytes.fromhex(bundle.data[2:]), bundle.gas_limit,
                           max_fee=bundle.max_fee_per_gas, tip=GWEI)  # fmt: skip
    receipt = devnet.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1 and receipt["blockNumber"] == block.number + 1
    assert receipt["gasUsed"] == bundle.simulated_gas_used
    assert devnet.balance("WETH", executor) - before == bundle.simulated_profit


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_prefetched_v3_pool_leaves_nothing_to_read_lazily(
    world: tuple[Devnet, Path], devnet: Devnet, route: str
) -> None:
    """The service prefetches an opportunity's pools (PoolProbe.of each hop); a V3 pool's probe
    traces V3 hops through it, so a route's simulation reads nothing over RPC: here on an EVM
    whose fork URL refuses connections (any lazy read fails the run), the bundle equals the
    one on a live fork to the wei and the gas unit. With V2-style probes for V3 pools the run
    read 14 slots lazily (price, liquidity, fee growth, a bitmap word, the oracle, our
    executor's V3 allowlist)."""
    settings, head, _, simulator = warm_simulator(devnet, world[1] / f"lazy-{route}", True)
    legs, amount = ROUTES[route]
    opp = opportunity(devnet, legs, amount, head)
    warm = WarmEvm(dead_url(), CHAIN_ID, devnet.executor.address, 1.0)
    warm.fork(head)
    cold = Simulator(settings, warm, simulator.bot, simulator.weth, Quarantine(3, 60, 60))

    call = rpc_of(devnet)

    async def prefetch() -> list[bool]:
        return [await prefetch_pool(call, warm, PoolProbe.of(h), cold.bot) for h in opp.hops]

    assert asyncio.run(prefetch()) == [True] * len(opp.hops)
    assert_same_bundle(cold.simulate(opp, time.monotonic()), simulator.simulate(opp, 0.0), opp)


def dead_url() -> str:
    """A fork URL nothing listens on: an EVM forked from it fails any lazy read."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def rpc_of(devnet: Devnet) -> Callable[[str, list[Any]], Awaitable[Any]]:
    async def call(method: str, params: list[Any]) -> Any:
        return devnet.rpc(method, params)

    return call


def assert_same_bundle(verdict: Verdict, expected: Verdict, opp: Opportunity) -> None:
    """Published, with the gas and profit of the live fork's bundle to the unit and the wei."""
    assert verdict.reason == "published" and verdict.bundle is not None, verdict
    assert expected.bundle is not None
    got = (verdict.bundle.simulated_gas_used, verdict.bundle.simulated_profit)
    assert got == (expected.bundle.simulated_gas_used, expected.bundle.simulated_profit)
    assert verdict.bundle.simulated_profit == opp.expected_profit


def test_a_refork_prefetches_the_pools_again_off_the_hot_path(
    world: tuple[Devnet, Path], devnet: Devnet
) -> None:
    """A refork starts an EVM with an empty database. The service skipped every pool whose
    tokens it knew (`pair_tokens` survives a refork), so after a reorg each route read its
    pools lazily, one blocking RPC each on the hot path. The prefetch queue (prefetch_queue.py)
    queues every pool it was asked for again when the EVM reforks: once they are loaded, the
    route runs on an EVM whose fork URL refuses connections, to the wei of a fresh fork."""
    settings, head, _, fresh = warm_simulator(devnet, world[1] / "refork", True)
    legs, amount = ROUTES["v2-v3-v3"]
    opp = opportunity(devnet, legs, amount, head)
    warm = WarmEvm(dead_url(), CHAIN_ID, devnet.executor.address, 1.0)
    warm.fork(head)
    queue = PrefetchQueue(warm)
    warm.on_fork = queue.forked
    cold = Simulator(settings, warm, fresh.bot, fresh.weth, Quarantine(3, 60, 60))

    async def prefetch() -> list[str]:  # what the service's prefetcher task does
        done = []
        while not queue.queue.empty():
            probe = queue.queue.get_nowait()
            assert await prefetch_pool(rpc_of(devnet), warm, probe, cold.bot)
            queue.done(probe.pair)
            done.append(probe.pair)
        return done

    for hop in opp.hops:
        queue.want(PoolProbe.of(hop))
    pools = [h.pool for h in opp.hops]
    assert asyncio.run(prefetch()) == pools
    assert_same_bundle(cold.simulate(opp, time.monotonic()), fresh.simulate(opp, 0.0), opp)
    for hop in opp.hops:  # loaded: an opportunity through them queues nothing
        queue.want(PoolProbe.of(hop))
    assert queue.queue.empty()
    warm.advance(head.model_copy(update={"reorg": True}))  # the same height on another branch
    assert (warm.forks, warm.last_refork_reason, warm.loaded) == (2, "reorg", set())
    assert asyncio.run(prefetch()) == pools[::-1]  # the most recently wanted first
    assert queue.requeued == len(pools)
    assert_same_bundle(cold.simulate(opp, time.monotonic()), fresh.simulate(opp, 0.0), opp)


def test_every_v3_pool_of_the_deployment_is_found_for_the_start_prefetch(devnet: Devnet) -> None:
    """Simulate prefetches at start every V3 pool its factories have over the deployment's
    tokens (CREATE2 candidates with code): exactly the devnet's pools, with their fee tiers."""
    contracts = read_deployment(devnet.deployment_path, CHAIN_ID)

    async def batch(calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return [devnet.rpc(method, params) for method, params in calls]

    candidates = v3_candidates(contracts.v3_dexes, contracts.tokens)
    found = asyncio.run(existing(batch, candidates))
    pools = devnet.deployment["v3_pools"]
    assert len(candidates) == 2 * 10 * 4 and len(found) == len(pools) > 0
    assert {(p.pair, p.token0, p.token1, p.v3_fee_bps) for p in found} == {
        (p["address"], p["token0"], p["token1"], p["fee"] // 100) for p in pools
    }
