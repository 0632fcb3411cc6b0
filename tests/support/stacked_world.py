"""The world of tests/integration/test_stacked_backruns.py (and the tests built on it:
test_stacked_late, test_backrun_fee_order, test_block_trade_reprice): a manually mined devnet,
two WETH/USDC pairs (DEX A and B), users swapping on A, and this test's own V2 math for the
backruns that close the gap, proven by simulate's warm EVM in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mev_common.bus import Bus
from mev_common.messages import Bundle, Opportunity, PendingTx
from web3 import Web3

from services.simulate.prefetch import PoolProbe, prefetch_pool
from services.simulate.service import SimulateService
from services.simulate.simulator import Simulator
from services.simulate.stacking import StackBook
from tests.integration.devnet.conftest import DEADLINE, Devnet, amount_out
from tests.integration.test_simulate_v3 import warm_simulator
from tests.support.submit_world import (
    CHAIN,
    GWEI,
    WETH,
    manual_mining_devnet,
    publish_bundle,
    submit_db_fixture,
    tx_states,
    wait_for,
)

Leg = tuple[str, str, str]  # dex, token in, token out
CYCLE: list[Leg] = [("B", "WETH", "USDC"), ("A", "USDC", "WETH")]
REVERSE: list[Leg] = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]
HEADROOM = 10**6  # users cap their fee at tip + this (as the devnet flow's users do)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("stacked-devnet"))


@pytest.fixture
def devnet(world: Devnet) -> Iterator[Devnet]:
    snapshot = world.rpc("evm_snapshot", [])
    yield world
    assert world.rpc("evm_revert", [snapshot]) is True


submit_db = submit_db_fixture  # a real submit process on `devnet`; its ledger's path


def reserves(devnet: Devnet) -> dict[str, list[int]]:
    """dex -> [WETH reserve, USDC reserve] of its WETH/USDC pair."""
    return {d: list(devnet.reserves(devnet.pair(d, "WETH", "USDC"), "WETH")) for d in "AB"}


def swap(state: dict[str, list[int]], dex: str, weth_in: bool, amount: int) -> int:
    """The test's own V2 swap on `state` (changed in place); returns the amount out."""
    r = state[dex]
    i, o = (0, 1) if weth_in else (1, 0)
    out = amount_out(amount, r[i], r[o])
    r[i] += amount
    r[o] -= out
    return out


def cycle_profit(
    state: dict[str, list[int]], amount: int, apply: bool = False, cycle: list[Leg] = CYCLE
) -> int:
    s = state if apply else {k: list(v) for k, v in state.items()}
    out = amount
    for dex, a, _ in cycle:
        out = swap(s, dex, a == "WETH", out)
    return out - amount


def best_amount(state: dict[str, list[int]], cycle: list[Leg] = CYCLE) -> int:
    """A good input (not necessarily the optimum): the best of a 0.01-WETH grid."""
    grid = (k * WETH // 100 for k in range(1, 2000))
    return max(grid, key=lambda x: cycle_profit(state, x, cycle=cycle))


def victim(
    devnet: Devnet, index: int, amount: int, tip: int, base: int, sells: str = "WETH"
) -> tuple[bytes, PendingTx]:
    """A user swapping `amount` of `sells` for the other token on DEX A."""
    user = devnet.user(index)
    router = devnet.router("A")
    tokens = devnet.deployment["tokens"]
    path = [tokens[sells]["address"], tokens["USDC" if sells == "WETH" else "WETH"]["address"]]
    data = router.encode_abi("swapExactTokensForTokens", [amount, 0, path, user.address, DEADLINE])
    max_fee = 2 * base + tip + HEADROOM
    raw = bytes(user.sign(router.address, data, 300_000, tip=tip, max_fee=max_fee))
    tx = PendingTx.model_validate({
        "chain_id": CHAIN, "hash": Web3.keccak(raw).to_0x_hex(), "from": user.address,
        "to": router.address, "nonce": user.nonce - 1, "value": 0, "gas": 300_000,
        "input": data, "max_fee_per_gas": max_fee, "max_priority_fee_per_gas": tip,
    })  # fmt: skip
    return raw, tx


def opportunity(devnet: Devnet, opp_id: str, head: Any, amount: int, profit: int,
                tx: PendingTx, cycle: list[Leg] = CYCLE) -> Opportunity:  # fmt: skip
    tokens = devnet.deployment["tokens"]
    hops, x = [], amount
    for dex, a, b in cycle:
        hops.append({"pool": devnet.pair(dex, a, b)["address"], "token_in": tokens[a]["address"],
                     "token_out": tokens[b]["address"], "fee_bps": 30, "amount_in": x,
                     "amount_out": 0})  # fmt: skip
    return Opportunity.model_validate(
        {"id": opp_id, "chain_id": CHAIN, "strategy": "backrun", "trigger": tx.hash,
         "block_number": head["number"], "block_hash": head["hash"].to_0x_hex(), "hops": hops,
         "amount_in": amount, "profit_token": tokens["WETH"]["address"],
         "expected_profit": profit, "max_fee_per_gas": 20 * GWEI,
         "deadline_block": head["number"] + 2, "victim": tx}
    )  # fmt: skip


async def stacking_simulator(devnet: Devnet, tmp: Path) -> tuple[Simulator, Any]:
    """simulate's warm EVM forked at the head, pairs prefetched as the service does."""
    _, _, warm, simulator = warm_simulator(devnet, tmp / "sim", flash=True)
    simulator.stacks = StackBook(2)  # simulate.stack_depth's default, whatever the config says

    async def call(method: str, params: list[Any]) -> Any:
        return devnet.rpc(method, params)

    for p in devnet.deployment["pairs"]:
        probe = PoolProbe(p["address"], p["token0"], p["token1"])
        assert await prefetch_pool(call, warm, probe, simulator.bot)
    return simulator, devnet.w3.eth.get_block("latest")


async def two_backruns(
    devnet: Devnet, tmp: Path, tag: str, log: Any = None
) -> tuple[list[tuple[bytes, PendingTx]], list[Bundle], list[int]]:
    """Two pending victims (3 and 2 gwei) and our two bundles; the second stacked on the first.
    Returns the victims, the bundles and this test's profits for them. `log`: an object with
    `count(strategy, result)` that simulate's `record` logs each verdict with."""
    simulator, head = await stacking_simulator(devnet, tmp)
    base = int(head["baseFeePerGas"])
    v1 = victim(devnet, 2, 40 * WETH, 3 * GWEI, base)
    v2 = victim(devnet, 3, 25 * WETH, 2 * GWEI, base)
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V1
    a1 = best_amount(state)
    p1 = cycle_profit(state, a1, apply=True)  # T1, applied: the second runs on top of it
    swap(state, "A", True, 25 * WETH)  # V2
    a2 = best_amount(state)
    p2 = cycle_profit(state, a2)
    assert p1 > 0 and p2 > 0
    book = simulator.stacks
    opps = [opportunity(devnet, f"{tag}-1", head, a1, p1, v1[1]),
            opportunity(devnet, f"{tag}-2", head, a2, p2, v2[1])]  # fmt: skip
    first, second = verdicts = [simulator.simulate(o, 0.0, book) for o in opps]
    if log is not None:  # as the service logs each verdict
        for o, v in zip(opps, verdicts, strict=True):
            SimulateService.record(log, o, v.reason, v.plan)
    assert first.bundle is not None and second.bundle is not None, (first, second)
    assert first.bundle.after_bundles == [] and second.bundle.after_bundles == [first.bundle.id]
    # exactly this test's math on the state each meets: [V1], then [V1, T1, V2]
    assert [first.bundle.simulated_profit, second.bundle.simulated_profit] == [p1, p2]
    # without stacking the second would have been proven on [V2] alone: another number
    alone = reserves(devnet)
    swap(alone, "A", True, 25 * WETH)
    assert cycle_profit(alone, a2) != p2
    return [v1, v2], [first.bundle, second.bundle], [p1, p2]


async def stack_that_reverts_alone(
    devnet: Devnet, tmp: Path, tag: str
) -> tuple[list[tuple[bytes, PendingTx]], list[Bundle]]:
    """V1 buys USDC on A (3 gwei) and our T1 closes the gap; V2 sells USDC on A (2 gwei) past
    where T1 left it, and our T2 buys USDC on A to sell on B, proven on [V1, T1, V2]. Without
    T1 ([V1, V2]) USDC is still dearer on A than on B: T2 would revert (it still passes
    decision.stack_risk: that revert costs less than it nets). Returns the victims, bundles."""
    simulator, head = await stacking_simulator(devnet, tmp)
    base = int(head["baseFeePerGas"])
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V1
    a1 = best_amount(state)
    p1 = cycle_profit(state, a1, apply=True)  # T1
    usdc = amount_out(25 * WETH, *state["A"])  # about 25 WETH worth of USDC
    v1 = victim(devnet, 2, 40 * WETH, 3 * GWEI, base)
    v2 = victim(devnet, 3, usdc, 2 * GWEI, base, sells="USDC")
    swap(state, "A", False, usdc)  # V2
    a2 = best_amount(state, REVERSE)
    p2 = cycle_profit(state, a2, cycle=REVERSE)
    alone = reserves(devnet)
    swap(alone, "A", True, 40 * WETH)
    swap(alone, "A", False, usdc)
    assert p1 > 0 and p2 > 0 and cycle_profit(alone, a2, cycle=REVERSE) < 0
    book = simulator.stacks
    first = simulator.simulate(opportunity(devnet, f"{tag}-1", head, a1, p1, v1[1]), 0.0, book)
    opp2 = opportunity(devnet, f"{tag}-2", head, a2, p2, v2[1], REVERSE)
    second = simulator.simulate(opp2, 0.0, book)
    assert first.bundle is not None and second.bundle is not None, (first, second)
    assert second.bundle.after_bundles == [first.bundle.id]
    assert second.bundle.pays_alone is False  # simulate ran it on [V1, V2]: it reverts there
    assert [first.bundle.simulated_profit, second.bundle.simulated_profit] == [p1, p2]
    return [v1, v2], [first.bundle, second.bundle]


async def send_both(bus: Bus, db: Path, bundles: list[Bundle]) -> None:
    """Publish our two bundles to submit, the second once the first is in flight."""
    for b in bundles:
        await publish_bundle(bus, b)
        await wait_for(lambda b=b: tx_states(db, b.id) == [("trade", "sent")], what=b.id)


def mined_in_a_row(devnet: Devnet, hashes: list[Any]) -> list[Any]:
    """The receipts of `hashes`, asserted mined one right after another in one block, each
    successful."""
    receipts = [devnet.w3.eth.get_transaction_receipt(h) for h in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    first = receipts[0]["transactionIndex"]
    assert [r["transactionIndex"] for r in receipts] == [first + i for i in range(len(hashes))]
    assert [r["status"] for r in receipts] == [1] * len(hashes)
    return receipts
