"""A pending SwapRouter swap backrun on a real anvil devnet, wei-exact (issue 12, V3 backruns).

A user's exactInputSingle / exactInput (multi-hop) call is signed but not sent; detect's own
pieces decode it (chain/swap_router_calls.py), apply it to the V3 pools read from the chain
(amm/swap_router.py through services/detect/pending_v3.py) and search the cycles through the
pools it moves (V2, V3 or mixed) on that post-state, as `backrun`. Simulate runs the victim then
our trade on its warm fork; then the victim and our trade are mined in one block, victim first
(it tips more): our executor's WETH grows by exactly the simulated profit, which equals detect's
expected profit, so the victim's V3 swap was applied to the wei.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak
from mev_common.amm.cycles import CycleIndex, find_cycles
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.chain.contracts import read_deployment
from mev_common.chain.swap_router_calls import EXACT_INPUT, EXACT_INPUT_SINGLE
from mev_common.chain.v3_pools import fetch_v3_pools, http_batch_caller
from mev_common.messages import PendingTx

from services.detect.opportunity import to_opportunity
from services.detect.pending_v3 import V3Routers
from services.detect.search import search
from services.simulate.prefetch import prefetch_victim
from services.simulate.simulator import victim_tx
from tests.integration.devnet.conftest import CHAIN_ID, Devnet, devnet_at, reverted_after
from tests.integration.devnet.v3_routes import v3_spec
from tests.integration.test_simulate_v3 import warm_simulator

GWEI = 10**9
SINGLE = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"
MULTI = "(bytes,address,uint256,uint256,uint256)"
VICTIMS = {  # (dex, symbols along the path, fees, amount in whole tokens)
    "single": ("A", ["USDC", "WETH"], [500], 20_000),
    "multi-hop": ("A", ["USDT", "USDC", "WETH"], [500, 500], 20_000),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devnet, Path]]:
    base = tmp_path_factory.mktemp("backrun-v3")
    with devnet_at(base) as devnet:
        yield devnet, base


@pytest.fixture
def devnet(world: tuple[Devnet, Path]) -> Iterator[Devnet]:
    with reverted_after(world[0]) as devnet:
        yield devnet
        devnet.rpc("evm_setAutomine", [True])


def chain_pools(devnet: Devnet, block: int) -> dict[str, V2Pool | V3Pool]:
    """Every devnet pool (V2 pairs and V3 pools) as detect holds it at `block`."""
    pools: dict[str, V2Pool | V3Pool] = {}
    for p in devnet.deployment["pairs"]:
        r0, r1 = devnet.reserves(p, p["symbol0"])
        pools[p["address"]] = V2Pool(p["address"], p["token0"], p["token1"], r0, r1, 30)
    addresses = [p["address"] for p in devnet.deployment["v3_pools"]]
    caller = http_batch_caller(devnet.node.rpc_url)
    for pool in asyncio.run(fetch_v3_pools(caller, addresses, block)):
        pools[pool.address] = pool
    return pools


def arpc(devnet: Devnet) -> Callable[[str, list[Any]], Awaitable[Any]]:
    async def call(method: str, params: list[Any]) -> Any:
        return devnet.rpc(method, params)

    return call


def victim_call(devnet: Devnet, name: str, user: str) -> tuple[str, bytes]:
    dex_name, symbols, fees, whole = VICTIMS[name]
    tokens = devnet.deployment["tokens"]
    amount = whole * 10 ** tokens[symbols[0]]["decimals"]
    router = next(d for d in devnet.deployment["v3_dexes"] if d["name"] == dex_name)
    deadline = 2**40
    if len(fees) == 1:
        params = (tokens[symbols[0]]["address"], tokens[symbols[1]]["address"], fees[0], user,
                  deadline, amount, 1, 0)  # fmt: skip
        return router["swap_router"], EXACT_INPUT_SINGLE + encode([SINGLE], [params])
    path = bytes.fromhex(tokens[symbols[0]]["address"][2:])
    for fee, symbol in zip(fees, symbols[1:], strict=True):
        path += fee.to_bytes(3, "big") + bytes.fromhex(tokens[symbol]["address"][2:])
    data = EXACT_INPUT + encode([MULTI], [(path, user, deadline, amount, 1)])
    return router["swap_router"], data


@pytest.mark.parametrize("name", list(VICTIMS))
def test_a_pending_swap_router_swap_is_backrun_exactly(
    world: tuple[Devnet, Path], devnet: Devnet, name: str
) -> None:
    settings, head, _, simulator = warm_simulator(devnet, world[1] / name, flash=True)
    executor, weth = devnet.executor.address, devnet.deployment["weth"]
    user = devnet.user(3)
    router, data = victim_call(devnet, name, user.address)
    raw = user.sign(router, data, 900_000, tip=3 * GWEI, max_fee=100 * GWEI)
    tx = PendingTx.model_validate({
        "chain_id": CHAIN_ID, "hash": "0x" + keccak(raw).hex(), "from": user.address,
        "to": router, "nonce": user.nonce - 1, "value": 0, "gas": 900_000,
        "input": "0x" + data.hex(), "max_fee_per_gas": 100 * GWEI,
        "max_priority_fee_per_gas": 3 * GWEI,
    })  # fmt: skip
    # detect: decode, apply to the chain's pools at the head, search the moved pools' cycles
    pools = chain_pools(devnet, head.number)
    routers = V3Routers(read_deployment(devnet.deployment_path, CHAIN_ID).v3_dexes)
    routers.reindex(p for p in pools.values() if isinstance(p, V3Pool))
    decoded = routers.decode(tx)
    assert decoded is not None
    applied = routers.apply(*decoded, pools, head.timestamp + 1)  # type: ignore[arg-type]
    assert applied is not None
    symbols = VICTIMS[name][1]
    moved = {
        v3_spec(devnet, f"A:{a}/{b}:{fee}")["address"]
        for a, b, fee in zip(symbols, symbols[1:], VICTIMS[name][2], strict=False)
    }
    assert set(applied.pools) == moved
    post = {**pools, **applied.pools}
    index = CycleIndex(find_cycles(pools.values(), [weth], max_hops=3))
    found = search(index.touching(applied.pools), post, settings.strategies,
                   head.base_fee_per_gas, backrun=True)  # fmt: skip
    assert found, "the victim's swap left no backrun"
    opp = to_opportunity(found[0], post, head, tx.hash, tx)
    assert opp.strategy == "backrun" and any(h.kind == "v3" for h in opp.hops)
    assert moved & {h.pool for h in opp.hops}
    # simulate: the victim traced at the head (as the service does before simulating it),
    # then our trade on its effect
    assert asyncio.run(prefetch_victim(arpc(devnet), simulator.warm, victim_tx(tx)))
    verdict = simulator.simulate(opp, time.monotonic())
    bundle = verdict.bundle
    assert verdict.reason == "published" and bundle is not None, verdict
    assert bundle.simulated_profit == opp.expected_profit > 0
    # mined in the next block, the victim first: exactly the simulated profit
    devnet.rpc("evm_setAutomine", [False])
    before = devnet.balance("WETH", executor)
    victim_hash = devnet.w3.eth.send_raw_transaction(raw)
    ours = devnet.bot().send(executor, bytes.fromhex(bundle.data[2:]), bundle.gas_limit,
                             max_fee=bundle.max_fee_per_gas, tip=GWEI)  # fmt: skip
    devnet.rpc("evm_mine", [head.timestamp + 1])
    victim_receipt = devnet.w3.eth.get_transaction_receipt(victim_hash)
    receipt = devnet.w3.eth.get_transaction_receipt(ours)
    assert victim_receipt["status"] == 1 and receipt["status"] == 1
    assert victim_receipt["blockNumber"] == receipt["blockNumber"] == head.number + 1
    assert victim_receipt["transactionIndex"] < receipt["transactionIndex"]
    assert devnet.balance("WETH", executor) - before == bundle.simulated_profit
    # and exactly the gas the chain charged: what the victim touched was carried over cold (in
    # one pyrevm journal it stayed warm: 27,900 gas short here, more than the budget's bias)
    assert receipt["gasUsed"] == bundle.simulated_gas_used
    assert verdict.gas_slack == 0
