"""Two user swaps through one pool in one block, both backrun: the second backrun is proven on
top of our first, unmined trade (services/simulate/stacking.py) and sent with the next nonce.

Real anvil (fee ordering, mining by hand), the real deployment and Executor, simulate's warm
EVM in-process, and a real submit process on real NATS. Two users buy USDC with WETH on DEX A
(the first tipping 3 gwei, the second 2 gwei); our cycle buys USDC on B and sells it on A. The
profits asserted are this test's own V2 math on the state each trade meets: the first on [V1],
the second on [V1, T1, V2]. Both land in one block in that order and the ledger equals the
chain to the wei (executor WETH, gas). When our first trade is cancelled (detect withdrew it)
after the second was sent, the second meets [V1, V2] instead: here it still pays (more than
its minProfit: V1's gap is still open) and the ledger still equals the chain.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Withdrawal

from services.simulate.prefetch import prefetch_victim
from services.simulate.simulator import victim_tx
from tests.integration.devnet.conftest import Devnet
from tests.integration.test_simulate_v3 import warm_simulator
from tests.support.stacked_world import (
    best_amount,
    cycle_profit,
    devnet,
    opportunity,
    reserves,
    send_both,
    stack_that_reverts_alone,
    stacking_simulator,
    submit_db,
    swap,
    two_backruns,
    victim,
    world,
)
from tests.support.submit_world import (
    CHAIN,
    GWEI,
    WETH,
    bot_nonce,
    ledger_rows,
    outcome_of,
    tx_states,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
__all__ = ["devnet", "submit_db", "world"]  # fixtures (tests/support/stacked_world.py)


async def test_two_victims_through_one_pool_are_both_backrun_and_both_land(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    victims, bundles, profits = await two_backruns(devnet, tmp_path, "land")
    db = submit_db
    executor = devnet.executor.address
    weth_before, nonce = devnet.balance("WETH", executor), bot_nonce(devnet)
    # the victims reach the node first, as they do when ingest reads them from its pool: a
    # backrun ties its victim's fees (services/submit/fees.py) and arrival order decides
    hashes = [devnet.w3.eth.send_raw_transaction(raw) for raw, _ in victims]
    await send_both(bus, db, bundles)
    devnet.rpc("anvil_mine", ["0x1"])
    outcomes = [(await outcome_of(bus, b.id))[0] for b in bundles]
    assert [o.status for o in outcomes] == ["included", "included"], outcomes
    ours = [devnet.w3.eth.get_transaction_receipt(o.tx_hash) for o in outcomes]
    users = [devnet.w3.eth.get_transaction_receipt(h) for h in hashes]
    # one block, the chain's order: V1, T1, V2, T2 (nonces n, n + 1)
    order = [users[0], ours[0], users[1], ours[1]]
    assert len({r["blockNumber"] for r in order}) == 1
    assert [r["transactionIndex"] for r in order] == sorted(r["transactionIndex"] for r in order)
    assert all(r["status"] == 1 for r in order)
    assert [devnet.w3.eth.get_transaction(o.tx_hash)["nonce"] for o in outcomes] == [
        nonce,
        nonce + 1,
    ]
    # ledger == chain, to the wei
    assert devnet.balance("WETH", executor) - weth_before == sum(profits)
    assert [o.realized_profit for o in outcomes] == profits
    rows = ledger_rows(db, "SELECT realized_profit, gas_cost FROM receipts ORDER BY block_number")
    assert sorted((int(p), int(g)) for p, g in rows) == sorted(
        (p, r["gasUsed"] * r["effectiveGasPrice"]) for p, r in zip(profits, ours, strict=True)
    )
    # simulate's gas is what the chain charged, to the unit, the stacked trade's too
    assert [r["gasUsed"] for r in ours] == [b.simulated_gas_used for b in bundles]


async def test_when_our_first_trade_is_cancelled_the_stacked_one_stays_safe(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    # distinct ids: the stream deduplicates by bundle id across this module's tests
    victims, bundles, _ = await two_backruns(devnet, tmp_path, "cancel")
    db = submit_db
    executor, bot = devnet.executor.address, devnet.deployment["bot"]
    weth_before = devnet.balance("WETH", executor)
    eth_before = int(devnet.w3.eth.get_balance(bot))
    assert bundles[1].pays_alone is True  # proven to pay on [V1, V2]: submit lets it stand
    for raw, _ in victims:
        devnet.w3.eth.send_raw_transaction(raw)
    await send_both(bus, db, bundles)
    # detect withdraws the first: submit replaces it by a cancel on its nonce
    withdrawal = Withdrawal(opportunity_id=bundles[0].opportunity_id, chain_id=CHAIN,
                            reason="test: a swap goes first")  # fmt: skip
    await bus.publish_core(subjects.withdrawals(CHAIN), withdrawal)
    await wait_for(lambda: ("cancel", "sent") in tx_states(db, bundles[0].id), what="cancel")
    devnet.rpc("anvil_mine", ["0x1"])
    first, second = [(await outcome_of(bus, b.id))[0] for b in bundles]
    assert first.status == "replaced" and first.realized_profit == 0, first
    # the second met [V1, V2] without our first trade. Here V1's gap is still open, so it
    # earns more than simulated; where it would revert instead, simulate sends it only if that
    # revert costs no more than it nets (decision.stack_risk, unit-tested)
    assert second.status == "included", second
    assert second.realized_profit > bundles[1].simulated_profit >= bundles[1].min_profit
    # ledger == chain, to the wei: WETH gained and every wei of gas spent
    assert devnet.balance("WETH", executor) - weth_before == second.realized_profit
    spent = sum(int(g) for (g,) in ledger_rows(db, "SELECT gas_cost FROM receipts"))
    assert eth_before - int(devnet.w3.eth.get_balance(bot)) == spent


async def test_when_our_first_trade_is_withdrawn_the_one_stacked_on_it_is_cancelled_too(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    """The stacked trade would revert without ours (pays_alone False): submit cancels both."""
    victims, bundles = await stack_that_reverts_alone(devnet, tmp_path, "down")
    db = submit_db
    executor, bot = devnet.executor.address, devnet.deployment["bot"]
    weth_before, nonce = devnet.balance("WETH", executor), bot_nonce(devnet)
    eth_before = int(devnet.w3.eth.get_balance(bot))
    users = [devnet.w3.eth.send_raw_transaction(raw) for raw, _ in victims]
    await send_both(bus, db, bundles)
    withdrawal = Withdrawal(opportunity_id=bundles[0].opportunity_id, chain_id=CHAIN,
                            reason="test: a swap goes first")  # fmt: skip
    await bus.publish_core(subjects.withdrawals(CHAIN), withdrawal)
    for b in bundles:
        await wait_for(lambda b=b: ("cancel", "sent") in tx_states(db, b.id), what=f"{b.id}")
    devnet.rpc("anvil_mine", ["0x1"])
    outcomes = [(await outcome_of(bus, b.id))[0] for b in bundles]
    assert [(o.status, o.realized_profit) for o in outcomes] == [("replaced", 0)] * 2, outcomes
    # both nonces taken by our 0-value self-transfers (21k gas); no trade of ours mined, so
    # nothing reverted; the users' swaps landed
    txs = [devnet.w3.eth.get_transaction(o.tx_hash) for o in outcomes]
    assert [(t["nonce"], t["to"], t["value"], t["gas"]) for t in txs] == [
        (nonce + i, bot, 0, 21_000) for i in range(2)
    ]
    receipts = [devnet.w3.eth.get_transaction_receipt(o.tx_hash) for o in outcomes]
    assert [(r["status"], r["gasUsed"]) for r in receipts] == [(1, 21_000)] * 2
    assert all(devnet.w3.eth.get_transaction_receipt(h)["status"] == 1 for h in users)
    assert bot_nonce(devnet, "latest") == nonce + 2
    states = ledger_rows(db, "SELECT kind, state FROM txs WHERE state != 'replaced'")
    assert sorted(states) == [("cancel", "mined")] * 2
    # ledger == chain, to the wei: no WETH moved, every wei of gas is the two cancels'
    assert devnet.balance("WETH", executor) == weth_before
    rows = ledger_rows(db, "SELECT tx_hash, gas_cost FROM receipts")
    assert sorted((h, int(g)) for h, g in rows) == sorted(
        (o.tx_hash, r["gasUsed"] * r["effectiveGasPrice"])
        for o, r in zip(outcomes, receipts, strict=True)
    )
    assert eth_before - int(devnet.w3.eth.get_balance(bot)) == sum(int(g) for _, g in rows)


async def test_a_follow_on_is_proven_only_stacked_on_the_trade_it_was_sized_behind(
    devnet: Devnet, tmp_path: Path
) -> None:
    """detect sizes a follow-on (services/detect/follow_on.py) on [V, our first backrun]. While
    that first one is not under it and not refused either (not simulated yet), what the
    follow-on meets is unknown (the first may still land between): it is refused."""
    simulator, head = await stacking_simulator(devnet, tmp_path)
    v = victim(devnet, 2, 40 * WETH, 3 * GWEI, int(head["baseFeePerGas"]))
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V
    a1 = best_amount(state) // 3  # our first backrun takes part of the gap: a follow-on pays
    p1 = cycle_profit(state, a1, apply=True)
    a2 = best_amount(state)
    p2 = cycle_profit(state, a2)
    assert p1 > 0 and p2 > 0
    first_opp = opportunity(devnet, "follow-1", head, a1, p1, v[1])
    follow = opportunity(devnet, "follow-2", head, a2, p2, v[1])
    follow = follow.model_copy(update={"follows": first_opp.id})
    book = simulator.stacks
    alone = simulator.simulate(follow, 0.0, book)
    assert (alone.reason, alone.bundle) == ("follow_on_alone", None)
    assert simulator.quarantine.active(0.0) == {}
    first = simulator.simulate(first_opp, 0.0, book)
    second = simulator.simulate(follow, 0.0, book)
    assert first.bundle is not None and second.bundle is not None, (first, second)
    assert second.bundle.after_bundles == [first.bundle.id]
    # exactly this test's math on the state each meets: [V], then [V, T1]
    assert [first.bundle.simulated_profit, second.bundle.simulated_profit] == [p1, p2]


async def test_a_follow_on_whose_first_backrun_was_refused_is_proven_on_what_it_meets(
    devnet: Devnet, tmp_path: Path
) -> None:
    """Our first backrun refused at its block (here too small to pay its gas) is never sent,
    so the follow-on sized behind it meets [V] alone: it is proven there, to the wei of this
    test's math, not refused `follow_on_alone` (a bench devnet flow refused 134 so, of which 47
    paid after gas right behind their victim on the chain). Mis-sized for [V], one that reverts
    there is dropped without striking its pools (three such strikes once quarantined every
    USDC cycle)."""
    simulator, head = await stacking_simulator(devnet, tmp_path)
    v = victim(devnet, 2, 40 * WETH, 3 * GWEI, int(head["baseFeePerGas"]))
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V; the first backrun never lands: nothing else moves
    amount = best_amount(state)
    small = amount // 1000  # pays, but less than its gas
    first = opportunity(devnet, "refused-1", head, small, cycle_profit(state, small), v[1])
    profit = cycle_profit(state, amount)
    follow = opportunity(devnet, "refused-2", head, amount, profit, v[1])
    follow = follow.model_copy(update={"follows": first.id})
    oversized = follow.model_copy(update={"id": "refused-3", "amount_in": 30 * amount})
    book = simulator.stacks
    assert simulator.simulate(follow, 0.0, book).reason == "follow_on_alone"  # first unknown
    refused = simulator.simulate(first, 0.0, book)
    assert (refused.reason, refused.bundle) == ("unprofitable", None)
    lost = simulator.simulate(oversized, 0.0, book)
    assert (lost.reason, lost.bundle) == ("follow_on_reverted:InsufficientProfit", None)
    assert simulator.quarantine.active(0.0) == {}
    proven = simulator.simulate(follow, 0.0, book)
    assert proven.bundle is not None, proven
    assert (proven.bundle.simulated_profit, proven.bundle.after_bundles) == (profit, [])


async def test_a_swap_ahead_that_is_already_mined_is_not_run_again(
    devnet: Devnet, tmp_path: Path
) -> None:
    """detect's pending book can lag the chain (a block it never received after a NATS restart)
    and hand simulate, as a swap ahead of the victim, one the head has mined. Simulate runs txs
    without a nonce check: run again, its effect counted twice (a chaos run's stacked backrun
    reverted on chain so). A known tx whose nonce the head has used is left out of the plan."""
    head = devnet.w3.eth.get_block("latest")
    base = int(head["baseFeePerGas"])
    raw, mined = victim(devnet, 4, 30 * WETH, 3 * GWEI, base)
    devnet.w3.eth.send_raw_transaction(raw)
    devnet.rpc("anvil_mine", ["0x1"])
    simulator, head = await stacking_simulator(devnet, tmp_path)
    v = victim(devnet, 2, 40 * WETH, 2 * GWEI, int(head["baseFeePerGas"]))
    state = reserves(devnet)  # the mined swap is in it, once
    swap(state, "A", True, 40 * WETH)  # V
    amount = best_amount(state)
    profit = cycle_profit(state, amount)
    opp = opportunity(devnet, "mined-ahead", head, amount, profit, v[1])
    verdict = simulator.simulate(opp.model_copy(update={"ahead": [mined]}), 0.0, simulator.stacks)
    assert verdict.bundle is not None, verdict
    assert verdict.bundle.simulated_profit == profit


async def test_simulates_log_names_what_ran_ahead_of_each_backrun(
    devnet: Devnet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """simulate's DEBUG line for a backrun lists the txs run ahead of it, in chain order (the
    victims by hash, our trades by bundle id): a reverted trade is followed to its cause."""
    counted: list[tuple[str, str]] = []
    log = SimpleNamespace(count=lambda strategy, result: counted.append((strategy, result)))
    with caplog.at_level(logging.DEBUG, logger="mev.simulate"):
        victims, bundles, _ = await two_backruns(devnet, tmp_path, "log", log)
    lines = [r.fields for r in caplog.records if r.getMessage() == "simulated"]  # type: ignore[attr-defined]
    block = int(devnet.w3.eth.block_number)
    v1, v2 = (tx.hash for _, tx in victims)
    assert lines == [
        {"opportunity": "log-1", "block": block, "result": "published", "ahead": [v1]},
        {"opportunity": "log-2", "block": block, "result": "published",
         "ahead": [v1, bundles[0].id, v2]},
    ]  # fmt: skip
    assert counted == [("backrun", "published")] * 2


async def test_a_backrun_through_pools_not_prefetched_costs_what_the_chain_charges(
    devnet: Devnet, tmp_path: Path
) -> None:
    """In a run's first seconds simulate has not prefetched the route's pools, so it does not
    know their tokens' balance slots (warm.carried_slots). The victim, traced at the head as
    the service does before simulating it, names every slot it touches: those are carried over
    cold behind it, not run in one journal with our trade (27,900 gas short on this route)."""
    _, _, warm, simulator = warm_simulator(devnet, tmp_path / "sim", flash=True)
    head = devnet.w3.eth.get_block("latest")
    raw, v = victim(devnet, 2, 40 * WETH, 3 * GWEI, int(head["baseFeePerGas"]))

    async def call(method: str, params: list[Any]) -> Any:
        return devnet.rpc(method, params)

    assert await prefetch_victim(call, warm, victim_tx(v))
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V
    amount = best_amount(state)
    profit = cycle_profit(state, amount)
    opp = opportunity(devnet, "cold-route", head, amount, profit, v)
    assert warm.carried_slots([(h.pool, h.token_in, h.token_out) for h in opp.hops]) is None
    verdict = simulator.simulate(opp, 0.0)
    bundle = verdict.bundle
    assert bundle is not None and verdict.gas_slack == 0, verdict
    assert bundle.simulated_profit == profit
    assert warm.env is not None
    devnet.w3.eth.send_raw_transaction(raw)
    devnet.rpc("evm_setNextBlockTimestamp", [warm.env.timestamp])
    ours = devnet.bot().send(bundle.to, bytes.fromhex(bundle.data[2:]), bundle.gas_limit,
                             tip=3 * GWEI - 1, max_fee=(v.max_fee_per_gas or 0) - 1)  # fmt: skip
    devnet.rpc("anvil_mine", ["0x1"])
    receipt = devnet.w3.eth.get_transaction_receipt(ours)
    assert (receipt["status"], receipt["transactionIndex"]) == (1, 1)  # behind its victim
    assert receipt["gasUsed"] == bundle.simulated_gas_used  # to the unit
