"""Stacked backruns across blocks (services/simulate/stacking.py StackBook.roll): our trade and
its victim miss block N+1; a backrun of N+1 through our trade's pool is stacked on it and both
land, and one through a pool only our trade's victim moves is dropped (before: proven on the
head alone, sent, and reverted behind our trade). And the other way round: a victim mined in
N + 1 without our backrun (it reached the node just after) has our trade cancelled, never left
to meet a later block's state (services/submit/late_victims.py; before, the cluster chaos test
saw one revert at minProfit so). Real anvil, real submit, as test_stacked_backruns.py, whose
world and helpers (tests/support/stacked_world.py) this module shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mev_common.bus import Bus
from mev_common.chain.rpc_blocks import block_from_rpc
from mev_common.messages import Block, Bundle, PendingTx
from web3 import Web3
from web3.exceptions import Web3RPCError

from services.simulate.simulator import Simulator
from tests.integration.devnet.conftest import DEADLINE, Devnet, amount_out
from tests.support.stacked_world import (  # its world (this module gets its own anvil)
    Leg,
    best_amount,
    cycle_profit,
    devnet,
    opportunity,
    reserves,
    send_both,
    stacking_simulator,
    submit_db,
    swap,
    victim,
    world,
)
from tests.support.submit_world import (
    CHAIN,
    GWEI,
    WETH,
    bot_nonce,
    ledger_rows,
    mine,
    outcome_of,
    tx_states,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
__all__ = ["devnet", "submit_db", "world"]  # fixtures (tests/support/stacked_world.py)


def new_head(devnet: Devnet) -> Block:
    """The head as simulate's block stream brings it (an empty block: no logs)."""
    raw = devnet.rpc("eth_getBlockByNumber", ["latest", False])
    assert raw["transactions"] == []
    return block_from_rpc(CHAIN, raw)


def sent_trade(db: Path, bundle_id: str) -> tuple[str, str]:
    """(hash, raw) of a bundle's trade tx, as submit recorded it."""
    [(tx_hash, raw)] = ledger_rows(
        db, "SELECT hash, raw FROM txs WHERE bundle_id = ? AND kind = 'trade'", bundle_id
    )
    return str(tx_hash), str(raw)


async def first_backrun(
    devnet: Devnet, tmp: Path, opp_id: str
) -> tuple[Simulator, Any, tuple[bytes, PendingTx], int, Bundle]:
    """Simulate at block N (its warm EVM and stack book), V1 (user 2 sells 40 WETH on A,
    tipping 3 gwei, not sent yet) and T1, its backrun proven on it: (simulator, head, V1, T1's
    input, T1)."""
    simulator, head = await stacking_simulator(devnet, tmp / "n")
    v1 = victim(devnet, 2, 40 * WETH, 3 * GWEI, int(head["baseFeePerGas"]))
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V1
    a1 = best_amount(state)
    p1 = cycle_profit(state, a1)
    first = simulator.simulate(opportunity(devnet, opp_id, head, a1, p1, v1[1]), 0.0,
                               simulator.stacks)  # fmt: skip
    assert first.bundle is not None and first.bundle.simulated_profit == p1 > 0, first
    return simulator, head, v1, a1, first.bundle


async def miss_block_n1(
    devnet: Devnet,
    db: Path,
    bundle_id: str,
    head: Any,
    simulator: Simulator,
    tmp: Path,
    v1_raw: bytes,
) -> tuple[Simulator, Any, tuple[bytes, PendingTx]]:
    """Our sent trade T1 misses block N + 1 (taken out of the pool, N + 1 mined empty, V1 then
    T1 back after it: a backrun ties its victim's fees and arrives after it); simulate at N + 1
    (its warm EVM forked there, the same stack book) sees the block; V2 (user 3, 25 WETH,
    tipping 2 gwei) is made."""
    t1_hash, t1_raw = sent_trade(db, bundle_id)
    devnet.rpc("anvil_dropTransaction", [t1_hash])
    assert mine(devnet) == head["number"] + 1
    devnet.w3.eth.send_raw_transaction(v1_raw)
    devnet.w3.eth.send_raw_transaction(t1_raw)
    later, head1 = await stacking_simulator(devnet, tmp / "n1")
    later.stacks = simulator.stacks
    later.on_block(new_head(devnet))  # as simulate's block stream: V1 is not among its txs
    v2 = victim(devnet, 3, 25 * WETH, 2 * GWEI, int(head1["baseFeePerGas"]))
    return later, head1, v2


async def test_a_backrun_behind_our_trade_that_missed_its_block_is_stacked_on_it(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    """Our T1 backruns V1 at block N; V1 and T1 reach the node just after block N + 1 is
    built, so both are still pending at N + 1. V2 (tipping less) swaps through T1's pool at
    N + 1: its backrun T2 takes the next nonce, so the chain mines it after T1 and V1 whatever
    it bids. T2 must be proven on [V1, T1, V2] and stacked on T1 (before: proven on [V2]
    alone, as if T1 did not exist, which made a devnet e2e trade revert behind ours)."""
    db = submit_db
    simulator, head, v1, a1, t1 = await first_backrun(devnet, tmp_path, "late-1")
    p1 = t1.simulated_profit
    executor, nonce = devnet.executor.address, bot_nonce(devnet)
    weth_before, eth_before = (
        devnet.balance("WETH", executor),
        int(devnet.w3.eth.get_balance(devnet.deployment["bot"])),
    )
    await send_both(bus, db, [t1])
    # T1 (and V1, not sent yet) miss block N + 1: taken out of the pool, back after it
    later, head1, v2 = await miss_block_n1(devnet, db, t1.id, head, simulator, tmp_path, v1[0])
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V1
    cycle_profit(state, a1, apply=True)  # T1
    swap(state, "A", True, 25 * WETH)  # V2
    a2 = best_amount(state)
    p2 = cycle_profit(state, a2)
    assert p2 > 0
    second = later.simulate(opportunity(devnet, "late-2", head1, a2, p2, v2[1]), 0.0,
                            later.stacks)  # fmt: skip
    assert second.bundle is not None, second
    assert second.bundle.after_bundles == [t1.id]
    assert second.bundle.simulated_profit == p2  # this test's math on [V1, T1, V2]
    users = [Web3.keccak(v1[0]), devnet.w3.eth.send_raw_transaction(v2[0])]
    await send_both(bus, db, [second.bundle])
    mine(devnet)
    outcomes = [(await outcome_of(bus, b.id))[0] for b in (t1, second.bundle)]
    assert [o.status for o in outcomes] == ["included", "included"], outcomes
    ours = [devnet.w3.eth.get_transaction_receipt(o.tx_hash) for o in outcomes]
    theirs = [devnet.w3.eth.get_transaction_receipt(h) for h in users]
    order = [theirs[0], ours[0], theirs[1], ours[1]]  # V1, T1, V2, T2 in block N + 2
    assert {r["blockNumber"] for r in order} == {head["number"] + 2}
    assert [r["transactionIndex"] for r in order] == sorted(r["transactionIndex"] for r in order)
    assert all(r["status"] == 1 for r in order)
    assert [devnet.w3.eth.get_transaction(o.tx_hash)["nonce"] for o in outcomes] == [
        nonce,
        nonce + 1,
    ]
    # ledger == chain, to the wei
    assert [o.realized_profit for o in outcomes] == [p1, p2]
    assert devnet.balance("WETH", executor) - weth_before == p1 + p2
    spent = sum(int(g) for (g,) in ledger_rows(db, "SELECT gas_cost FROM receipts"))
    assert eth_before - int(devnet.w3.eth.get_balance(devnet.deployment["bot"])) == spent


async def test_a_backrun_behind_the_victim_of_our_trade_that_missed_its_block_never_reverts(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    """The devnet e2e's revert: our T1 (through the WETH/DAI pairs, none of T2's) backruns V1 at
    block N; both miss block N + 1. V1 sells USDC on A's WETH/USDC pair, V2 (tipping less)
    buys it there at N + 1. T2 (V2's backrun through that pair) shares no pool with T1, so
    submit's pool claims let it through, but it takes the nonce after T1's and lands behind T1
    and so behind V1, which undoes V2's move: proven on [V2] alone it reverted on chain. Proven
    on [V1, T1, V2] it does not pay: simulate drops it (`stack_reverted`), nothing reverts."""
    db = submit_db
    dump = devnet.user(4)  # a user leaves a WETH/DAI gap between the DEXes: T1 closes it
    tokens = devnet.deployment["tokens"]
    path = [tokens["WETH"]["address"], tokens["DAI"]["address"]]
    data = devnet.router("B").encode_abi(
        "swapExactTokensForTokens", [30 * WETH, 0, path, dump.address, DEADLINE]
    )
    dump.send(devnet.router("B").address, data, 300_000)
    mine(devnet)
    simulator, head = await stacking_simulator(devnet, tmp_path / "n")
    base = int(head["baseFeePerGas"])
    state = reserves(devnet)
    usdc = amount_out(25 * WETH, *state["A"])  # about 25 WETH worth of USDC
    v1 = victim(devnet, 2, usdc, 3 * GWEI, base, sells="USDC")
    dai: list[Leg] = [("A", "WETH", "DAI"), ("B", "DAI", "WETH")]
    a1 = max((k * WETH // 10 for k in range(1, 200)), key=lambda x: devnet.expected_out(dai, x))
    p1 = devnet.expected_out(dai, a1) - a1
    first = simulator.simulate(opportunity(devnet, "behind-1", head, a1, p1, v1[1], dai), 0.0,
                               simulator.stacks)  # fmt: skip
    assert first.bundle is not None and first.bundle.simulated_profit == p1 > 0, first
    executor, bot = devnet.executor.address, devnet.deployment["bot"]
    weth_before, eth_before = devnet.balance("WETH", executor), int(devnet.w3.eth.get_balance(bot))
    await send_both(bus, db, [first.bundle])
    later, head1, v2 = await miss_block_n1(
        devnet, db, first.bundle.id, head, simulator, tmp_path, v1[0]
    )
    state = reserves(devnet)
    swap(state, "A", True, 25 * WETH)  # V2 alone: the gap detect sizes T2 on
    a2 = best_amount(state)
    p2 = cycle_profit(state, a2)
    assert p2 > 0
    second = later.simulate(opportunity(devnet, "behind-2", head1, a2, p2, v2[1]), 0.0,
                            later.stacks)  # fmt: skip
    assert second.bundle is None and second.reason.startswith("stack_reverted"), second
    users = [Web3.keccak(v1[0]), devnet.w3.eth.send_raw_transaction(v2[0])]
    mine(devnet)
    [outcome] = await outcome_of(bus, first.bundle.id)
    assert outcome.status == "included" and outcome.realized_profit == p1, outcome
    assert all(devnet.w3.eth.get_transaction_receipt(h)["status"] == 1 for h in users)
    assert devnet.balance("WETH", executor) - weth_before == p1
    spent = sum(int(g) for (g,) in ledger_rows(db, "SELECT gas_cost FROM receipts"))
    assert eth_before - int(devnet.w3.eth.get_balance(bot)) == spent


@pytest.mark.parametrize("how", ["mined", "replaced"])
async def test_a_backrun_whose_victim_is_mined_or_replaced_without_it_is_cancelled(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path, how: str
) -> None:
    """Block N + 1 mines V1 ("mined") or a plain transfer V1's sender put on V1's nonce, tipping
    more ("replaced": V1 never gets a receipt, only the sender's nonce tells; before, T1 waited
    for its deadline in the pool to meet an unproven state), and not T1, which reaches the node
    just after that block: submit cancels T1."""
    db = submit_db
    _, head, v1, _, t1 = await first_backrun(devnet, tmp_path, f"orphan-{how}")
    assert (t1.victim_sender, t1.victim_nonce) == (v1[1].sender, v1[1].nonce)
    executor, bot = devnet.executor.address, devnet.deployment["bot"]
    weth_before, eth_before = devnet.balance("WETH", executor), int(devnet.w3.eth.get_balance(bot))
    await send_both(bus, db, [t1])
    t1_hash, t1_raw = sent_trade(db, t1.id)
    devnet.rpc("anvil_dropTransaction", [t1_hash])
    user, base = devnet.user(2), int(head["baseFeePerGas"])
    assert user.nonce == v1[1].nonce  # V1 was never sent: its nonce is free
    raw = v1[0] if how == "mined" else user.sign(user.address, b"", 21_000, tip=5 * GWEI,
                                                 max_fee=2 * base + 5 * GWEI)  # fmt: skip
    user_hash = devnet.w3.eth.send_raw_transaction(raw)
    assert mine(devnet) == head["number"] + 1
    assert devnet.w3.eth.get_transaction_receipt(user_hash)["status"] == 1
    try:
        devnet.w3.eth.send_raw_transaction(t1_raw)
    except Web3RPCError as exc:  # submit's tracking pass was quicker: its cancel holds the nonce
        assert "replacement transaction underpriced" in str(exc), exc
    # submit's next tracking pass sees V1 gone and T1's nonce not counted: a cancel takes it
    await wait_for(lambda: ("cancel", "sent") in tx_states(db, t1.id), what="cancel")
    mine(devnet)
    [outcome] = await outcome_of(bus, t1.id)
    assert (outcome.status, outcome.realized_profit) == ("replaced", 0), outcome
    assert outcome.reason.startswith("cancelled (withdrawn)"), outcome
    assert devnet.w3.eth.get_transaction_receipt(outcome.tx_hash)["to"].lower() == bot.lower()
    # ledger == chain, to the wei: no WETH moved, only the cancel's gas spent
    assert devnet.balance("WETH", executor) == weth_before
    [(gas_cost,)] = ledger_rows(db, "SELECT gas_cost FROM receipts")
    assert eth_before - int(devnet.w3.eth.get_balance(bot)) == int(gas_cost) > 0
