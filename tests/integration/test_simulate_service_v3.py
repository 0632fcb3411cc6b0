"""The simulate service keeps its EVM warm across a V3 pool change: a real `python -m
services.simulate` on real NATS and anvil. A user's SwapRouter swap moves a V3 pool; the block
(with its logs, as ingest publishes it) and then an opportunity through that pool arrive; the
service patches the pool from the node's diff of the block (diff_feed.py), publishes the bundle
without reforking, and the bundle mined in the next block costs and earns what it said."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from eth_abi import encode
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Bundle
from mev_common.messages import decode as decode_message
from mev_ops.devnet.flow import EXACT_INPUT_SINGLE

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.integration.test_simulate_service import published
from tests.integration.test_simulate_v3 import ROUTES, SWAP_PARAMS, head_block, opportunity
from tests.support.stack import ServiceProcess
from tests.support.submit_world import CHAIN, config_for
from tests.support.submit_world import manual_mining_devnet as _devnet

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from _devnet(tmp_path_factory.mktemp("simulate-service-v3-devnet"))


def health(proc: ServiceProcess) -> dict[str, Any]:
    with urllib.request.urlopen(proc.health_url(), timeout=2) as resp:
        detail: dict[str, Any] = json.loads(resp.read())["checks"]["simulator"]["detail"]
    return detail


async def test_a_v3_pool_changed_by_a_block_is_patched_not_reforked(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    config = config_for(
        devnet, nats_server.url, tmp_path,
        performance={"decision_timeout_ms": 10_000},  # a loaded machine must not make it stale
        simulate={"reference_sample_rate": 0, "flash": True},
    )  # fmt: skip
    # the devnet's rate (config/devnet.yaml): each pool's prefetch is ~12 traces, and at the
    # default 25 calls a second its 56 pools took 28 s to prefetch, and as long again below
    raw = yaml.safe_load(config.read_text())
    raw["chain"]["rpc_endpoints"][0]["rate_limit_rps"] = 1000
    config.write_text(yaml.safe_dump(raw))
    proc = ServiceProcess("simulate", config, tmp_path / "simulate.log").start()
    try:
        proc.wait_health(200, timeout_s=60)
        start = head_block(devnet)
        # a user buys WETH with 20,000 USDC on A's 500-pip pool: WETH dearer there
        tokens, user = devnet.deployment["tokens"], devnet.user(3)
        dex = next(x for x in devnet.deployment["v3_dexes"] if x["name"] == "A")
        params = (tokens["USDC"]["address"], tokens["WETH"]["address"], 500, user.address,
                  2**40, 20_000 * 10**6, 0, 0)  # fmt: skip
        swap = user.send(dex["swap_router"], EXACT_INPUT_SINGLE + encode([SWAP_PARAMS], [params]),
                         600_000)  # fmt: skip
        devnet.rpc("evm_setNextBlockTimestamp", [start.timestamp + 1])
        devnet.rpc("evm_mine", [])
        assert devnet.w3.eth.get_transaction_receipt(swap)["status"] == 1
        block = head_block(devnet)
        assert block.number == start.number + 1 and len(block.logs) >= 3
        await bus.publish(subjects.blocks(CHAIN), block, msg_id=f"block-{block.number}",
                          trace=block.hash, seen_ns=time.time_ns())  # fmt: skip
        # the diff applied before the opportunity: a loaded machine can take longer than the
        # service's BLOCK_DIFF_WAIT_S to trace it, and the simulation would (rightly) refork
        deadline = time.monotonic() + 30
        while (diffs := health(proc))["block_diffs"] < 1:
            assert time.monotonic() < deadline, (diffs, proc.logs())
            await asyncio.sleep(0.05)
        legs, amount = ROUTES["v3-v3"]
        opp = await asyncio.to_thread(opportunity, devnet, legs, amount, block)  # its own loop
        subject = subjects.opportunities(CHAIN, opp.strategy)
        await bus.publish(subject, opp, msg_id=opp.id, trace=opp.id, seen_ns=time.time_ns())
        deadline = time.monotonic() + 60
        while not (found := await published(bus, subjects.bundles(CHAIN))):
            assert time.monotonic() < deadline, proc.logs()
            await asyncio.sleep(0.2)
        [msg] = found
        bundle = decode_message(Bundle, msg.data)
        assert bundle.simulated_profit == opp.expected_profit > 0  # our models on the new pool
        detail = health(proc)
        assert (detail["forks"], detail["block_diffs"], detail["head"]) == (1, 1, block.number)
        # mined in the next block: exactly what simulate said
        executor = devnet.executor.address
        before = devnet.balance("WETH", executor)
        tx = devnet.bot().send(executor, bytes.fromhex(bundle.data[2:]), bundle.gas_limit)
        devnet.rpc("evm_setNextBlockTimestamp", [block.timestamp + 1])
        devnet.rpc("evm_mine", [])
        receipt = devnet.w3.eth.get_transaction_receipt(tx)
        assert (receipt["status"], receipt["blockNumber"]) == (1, block.number + 1)
        assert receipt["gasUsed"] == bundle.simulated_gas_used
        assert devnet.balance("WETH", executor) - before == bundle.simulated_profit
        # a reorg reforks: the new EVM's database is empty, so every pool the service
        # prefetched (at start: the V2 pairs and V3 pools) is prefetched again, off the hot path
        pools = len(devnet.deployment["pairs"]) + len(devnet.deployment["v3_pools"])
        deadline = time.monotonic() + 60
        while health(proc)["prefetched_pairs"] < pools:  # the start's prefetch done
            assert time.monotonic() < deadline, proc.logs()
            await asyncio.sleep(0.1)
        reorg = head_block(devnet).model_copy(update={"reorg": True})
        await bus.publish(subjects.blocks(CHAIN), reorg, msg_id=f"reorg-{reorg.number}",
                          trace=reorg.hash, seen_ns=time.time_ns())  # fmt: skip
        while (detail := health(proc))["prefetched_pairs"] < 2 * pools:
            assert time.monotonic() < deadline, (detail, proc.logs())
            await asyncio.sleep(0.1)
        assert (detail["forks"], detail["last_fork_reason"]) == (2, "reorg")
        assert (detail["prefetch_requeued"], detail["prefetched_pairs"]) == (pools, 2 * pools)
    finally:
        proc.stop()
