"""A backrun's victim runs once per head (services/simulate/effects.py), counted on the real
pyrevm EVM forked from a real anvil with the devnet deployment.

Before, a plain backrun ran 3 EVM transactions (its victim, the measuring call, the final
calldata) and every backrun of the same victim ran the victim again. Now the victim runs once,
when its trace is loaded (as simulate's early trace does), and each backrun of it runs 2. The
bundles stay exact: profit equal to this test's own V2 math, gas and profit equal to a fresh
fork's run of [victim, our final bytes] as two transactions. An effect is never met again once
the head moved (the block env changes what the victim writes), once a slot it read changed,
or behind a victim stacked ahead of it on the same pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyrevm import EVM

from services.simulate.engine import (
    SPEC,
    TxSpec,
    block_env_after,
    read_slots,
    run_backrun,
    write_cold,
)
from services.simulate.pair_state import SLOT_RESERVES
from services.simulate.prefetch import prefetch_victim
from services.simulate.reference import agree, fetch_bundle_prestate, run_reference
from services.simulate.simulator import CALL_GAS, Simulator, Verdict, victim_tx
from tests.integration.devnet.conftest import Devnet
from tests.integration.test_simulate_v3 import head_block
from tests.support.stacked_world import (
    CYCLE,
    best_amount,
    cycle_profit,
    devnet,
    opportunity,
    reserves,
    stacking_simulator,
    swap,
    victim,
    world,
)
from tests.support.submit_world import CHAIN, GWEI, WETH

pytestmark = pytest.mark.timeout(180)


__all__ = ["devnet", "world"]  # fixtures (tests/support/stacked_world.py)


class CountingEvm:
    """The warm EVM, counting the transactions run on it: message calls that may write (a
    victim, our calls), not the static balance reads."""

    def __init__(self, evm: EVM) -> None:
        self.evm = evm
        self.txs = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.evm, name)

    def message_call(self, *args: Any, **kwargs: Any) -> Any:
        self.txs += not kwargs.get("is_static", False)
        return self.evm.message_call(*args, **kwargs)


async def counted(devnet: Devnet, tmp: Path) -> tuple[Simulator, CountingEvm, Any]:
    simulator, head = await stacking_simulator(devnet, tmp)
    warm = simulator.warm
    assert warm.evm is not None
    warm.evm = counting = CountingEvm(warm.evm)  # type: ignore[assignment]
    return simulator, counting, head


async def trace(devnet: Devnet, simulator: Simulator, tx: TxSpec) -> None:
    """The victim traced and loaded at the head, as simulate does when its swap is seen."""

    async def call(method: str, params: list[Any]) -> Any:
        return devnet.rpc(method, params)

    assert await prefetch_victim(call, simulator.warm, tx)


async def fresh_fork_agrees(devnet: Devnet, simulator: Simulator, verdict: Verdict) -> None:
    """The bundle's final bytes behind its victim on a fresh fork at the head, as two
    transactions (carried: the route's V2 slots): the same gas to the unit, profit to the wei;
    and on the py-evm reference, as simulate's reference check runs it."""
    warm, bundle = simulator.warm, verdict.bundle
    assert bundle is not None and verdict.victim is not None and warm.head is not None
    assert bundle.profit_token is not None and bundle.to is not None
    env = block_env_after(warm.head, CHAIN, 1)
    fresh = EVM(fork_url=devnet.node.rpc_url, fork_block=hex(warm.head.number), spec_id=SPEC,
                env=env.pyrevm_env())  # fmt: skip
    final = TxSpec(simulator.bot, bundle.to, bytes.fromhex(bundle.data[2:]), 0, CALL_GAS)
    tokens = devnet.deployment["tokens"]
    hops = [(devnet.pair(d, a, b)["address"], tokens[a]["address"], tokens[b]["address"])
            for d, a, b in CYCLE]  # fmt: skip
    carried = warm.carried_slots(hops)
    assert carried is not None
    exact = run_backrun(fresh, final, bundle.profit_token, warm.executor, verdict.victim, carried)
    assert exact.success and (exact.gas_used, exact.profit) == (
        bundle.simulated_gas_used,
        bundle.simulated_profit,
    )

    async def call(method: str, params: list[Any]) -> Any:
        return devnet.rpc(method, params)

    txs = [verdict.victim, final]
    prestate = await fetch_bundle_prestate(call, txs, warm.head.number, env)
    reference = run_reference(prestate, env, final, bundle.profit_token, warm.executor, txs[0])
    assert agree(exact, reference), (exact, reference)


async def test_a_plain_backrun_runs_two_evm_transactions(devnet: Devnet, tmp_path: Path) -> None:
    simulator, evm, head = await counted(devnet, tmp_path)
    _, v = victim(devnet, 2, 40 * WETH, 3 * GWEI, int(head["baseFeePerGas"]))
    await trace(devnet, simulator, victim_tx(v))
    assert evm.txs == 1  # the victim, once, as its trace is loaded
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V
    best = best_amount(state)
    # two cycles through the victim's pool (detect sends several): each runs only its own 2
    for n, amount in enumerate((best, best // 2)):
        profit = cycle_profit(state, amount)
        opp = opportunity(devnet, f"count-{n}", head, amount, profit, v)
        before = evm.txs
        verdict = simulator.simulate(opp, 0.0)
        assert verdict.bundle is not None, verdict
        assert evm.txs - before == 2  # the measuring call and the final calldata
        assert verdict.bundle.simulated_profit == profit > 0
        await fresh_fork_agrees(devnet, simulator, verdict)
    effects = simulator.warm.effects
    assert (effects.runs, effects.reused) == (1, 2)


async def test_an_effect_is_not_met_again_after_the_head_moves(
    devnet: Devnet, tmp_path: Path
) -> None:
    """An empty block: no slot the victim reads changes, but the next block's timestamp does,
    and with it what the victim writes (its pool's cumulative prices and last timestamp: our
    call behind a stale effect would skip the new second's price update, ~20k gas short)."""
    simulator, evm, head = await counted(devnet, tmp_path)
    _, v = victim(devnet, 2, 40 * WETH, 3 * GWEI, int(head["baseFeePerGas"]))
    await trace(devnet, simulator, victim_tx(v))
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)
    amount = best_amount(state)
    profit = cycle_profit(state, amount)
    first = simulator.simulate(opportunity(devnet, "head-1", head, amount, profit, v), 0.0)
    assert first.bundle is not None, first
    devnet.rpc("evm_setNextBlockTimestamp", [int(head["timestamp"]) + 1])
    devnet.rpc("anvil_mine", ["0x1"])
    block = head_block(devnet)
    simulator.warm.advance(block)
    assert simulator.warm.forks == 1 and simulator.warm.head == block  # patched, not reforked
    assert simulator.warm.effects.entries == {}
    await trace(devnet, simulator, victim_tx(v))  # traced again at the new head, as simulate does
    head = devnet.w3.eth.get_block("latest")
    before = evm.txs
    second = simulator.simulate(opportunity(devnet, "head-2", head, amount, profit, v), 0.0)
    assert second.bundle is not None, second
    assert evm.txs - before == 2
    assert (simulator.warm.effects.runs, simulator.warm.effects.reused) == (2, 2)
    assert second.bundle.simulated_profit == profit
    await fresh_fork_agrees(devnet, simulator, second)


async def test_an_effect_is_run_again_when_a_slot_it_read_changes(
    devnet: Devnet, tmp_path: Path
) -> None:
    """At the same head (a block diff, a newer trace loaded): the effect of before is stale."""
    simulator, _, head = await counted(devnet, tmp_path)
    _, v = victim(devnet, 2, 40 * WETH, 3 * GWEI, int(head["baseFeePerGas"]))
    tx = victim_tx(v)
    await trace(devnet, simulator, tx)
    warm = simulator.warm
    carried = warm.carried_by([tx])
    assert carried is not None and warm.evm is not None
    pool = devnet.pair("A", "WETH", "USDC")["address"]
    (packed,) = read_slots(warm.evm, pool, SLOT_RESERVES)
    old, _ = warm.effects.of(warm.evm, tx, carried)
    assert (warm.effects.runs, warm.effects.reused) == (1, 1)
    write_cold(warm.evm, [(pool, SLOT_RESERVES, packed + 10**9)])  # reserve0 up by 1e9 wei
    new, _ = warm.effects.of(warm.evm, tx, carried)
    assert (warm.effects.runs, warm.effects.reused) == (2, 1) and new != old
    write_cold(warm.evm, [(pool, SLOT_RESERVES, packed)])
    again, _ = warm.effects.of(warm.evm, tx, carried)
    assert (warm.effects.runs, warm.effects.reused) == (3, 1) and again == old


async def test_a_victim_stacked_ahead_on_the_same_pool_is_not_met_with_the_cached_effect(
    devnet: Devnet, tmp_path: Path
) -> None:
    """V1 (2 gwei) is traced and its effect kept; then V2 (3 gwei, the same pool) comes and our
    backrun of it is published. V1's next backrun meets [V2, our T2, V1] in the block: it is
    proven there (this test's math), not on V1's effect at the head alone."""
    simulator, _, head = await counted(devnet, tmp_path)
    base = int(head["baseFeePerGas"])
    _, v1 = victim(devnet, 2, 40 * WETH, 2 * GWEI, base)
    _, v2 = victim(devnet, 3, 25 * WETH, 3 * GWEI, base)
    await trace(devnet, simulator, victim_tx(v1))
    await trace(devnet, simulator, victim_tx(v2))
    book = simulator.stacks
    state = reserves(devnet)
    swap(state, "A", True, 25 * WETH)  # V2
    a2 = best_amount(state)
    p2 = cycle_profit(state, a2, apply=True)  # T2, applied: V1 comes after it
    second = simulator.simulate(opportunity(devnet, "v2", head, a2, p2, v2), 0.0, book)
    assert second.bundle is not None, second
    alone = reserves(devnet)
    swap(alone, "A", True, 40 * WETH)  # V1 at the head alone: what the kept effect holds
    swap(state, "A", True, 40 * WETH)  # V1 behind V2 and T2
    a1 = best_amount(state)
    p1 = cycle_profit(state, a1)
    assert cycle_profit(alone, a1) != p1
    runs = simulator.warm.effects.runs
    first = simulator.simulate(opportunity(devnet, "v1", head, a1, p1, v1), 0.0, book)
    assert first.bundle is not None and first.plan is not None, first
    assert first.bundle.after_bundles == [second.bundle.id]
    assert len(first.plan.ahead) == 3 and first.bundle.simulated_profit == p1
    assert simulator.warm.effects.runs == runs  # no effect of a victim alone was made or met
