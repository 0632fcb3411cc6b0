"""A victim waiting for a cheaper lower nonce of its sender: our backrun bids that nonce's fee.

anvil `--order fees` mines the highest max fee first among the txs whose sender's lower nonces
are placed. A user sends A (1 gwei tip, its max fee tip + 2 x base + 1e6) and then the swap B
(nonce + 1, 2 gwei). Bidding B's max fee, ours would be ready while B waits for A, and go first:
simulate refused it (`stack_order`: 284 refusals in one devnet flow run). Now ours bids A's max
fee (a tie A arrived first for), B is ready after A and bids more: the block is [A, B, ours].

Real anvil (manual mining), the real deployment and Executor, simulate's warm EVM in-process
and a real submit process on real NATS, as tests/integration/test_backrun_fee_order.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mev_common.bus import Bus
from mev_common.messages import PendingTx
from web3 import Web3

from services.submit.fees import next_base_fee
from tests.integration.devnet.conftest import Devnet
from tests.support.stacked_world import (  # its world (this module gets its own anvil)
    HEADROOM,
    best_amount,
    cycle_profit,
    devnet,
    mined_in_a_row,
    opportunity,
    reserves,
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
    outcome_of,
    publish_bundle,
    tx_states,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
__all__ = ["devnet", "submit_db", "world"]  # fixtures (tests/support/stacked_world.py)


def transfer(devnet: Devnet, index: int, tip: int, base: int) -> tuple[bytes, PendingTx]:
    """User `index` sends itself nothing: a tx its next swap waits for, touching no pool."""
    user = devnet.user(index)
    max_fee = 2 * base + tip + HEADROOM
    raw = bytes(user.sign(user.address, b"", 21_000, tip=tip, max_fee=max_fee))
    tx = PendingTx.model_validate({
        "chain_id": CHAIN, "hash": Web3.keccak(raw).to_0x_hex(), "from": user.address,
        "to": user.address, "nonce": user.nonce - 1, "value": 0, "gas": 21_000,
        "input": "0x", "max_fee_per_gas": max_fee, "max_priority_fee_per_gas": tip,
    })  # fmt: skip
    return raw, tx


async def test_a_backrun_of_a_swap_behind_its_senders_cheaper_tx_lands_right_after_the_swap(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    simulator, head = await stacking_simulator(devnet, tmp_path)
    simulator.stacks.bid_under = True  # simulate.bid_behind_victim_nonces (off by default)
    base = int(head["baseFeePerGas"])
    a_raw, a_tx = transfer(devnet, 2, 1 * GWEI, base)
    a_hash = devnet.w3.eth.send_raw_transaction(a_raw)  # pending: B takes the next nonce
    b_raw, b_tx = victim(devnet, 2, 40 * WETH, 2 * GWEI, base)
    assert (a_tx.nonce + 1, a_tx.sender) == (b_tx.nonce, b_tx.sender)
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # B (A moves no pool)
    amount = best_amount(state)
    profit = cycle_profit(state, amount)
    opp = opportunity(devnet, "behind-a", head, amount, profit, b_tx)
    verdict = simulator.simulate(opp.model_copy(update={"ahead": [a_tx]}), 0.0, simulator.stacks)
    bundle = verdict.bundle
    assert bundle is not None, verdict  # before: Verdict("stack_order")
    assert verdict.plan is not None and verdict.plan.keys == (a_tx.hash, b_tx.hash)
    assert (bundle.simulated_profit, bundle.bid_max_fee_per_gas) == (profit, a_tx.max_fee_per_gas)
    assert bundle.max_fee_per_gas == a_tx.max_fee_per_gas  # the gas it nets after: at that fee
    gas_cost = bundle.net_profit_wei - profit
    assert gas_cost < 0 and -gas_cost % a_tx.max_fee_per_gas == 0

    b_hash = devnet.w3.eth.send_raw_transaction(b_raw)
    await publish_bundle(bus, bundle)
    await wait_for(lambda: tx_states(submit_db, bundle.id) == [("trade", "sent")], what="ours")
    last = devnet.w3.eth.get_block("latest")  # submit's head: it bid at the base fee after it
    next_base = next_base_fee(int(last["baseFeePerGas"]), last["gasUsed"], last["gasLimit"])
    devnet.rpc("anvil_mine", ["0x1"])
    (outcome,) = await outcome_of(bus, bundle.id)
    mined_in_a_row(devnet, [a_hash, b_hash, outcome.tx_hash])  # A, B, ours; all succeeded
    assert (outcome.status, outcome.realized_profit) == ("included", profit)
    # ours bid A's max fee, one wei under B's effective tip at that fee
    ours = devnet.w3.eth.get_transaction(outcome.tx_hash)
    tip = min(b_tx.max_priority_fee_per_gas or 0, a_tx.max_fee_per_gas - next_base) - 1
    assert tip < 2 * GWEI - 1  # under B's tip: B's effective tip at A's max fee binds
    assert (ours["maxFeePerGas"], ours["maxPriorityFeePerGas"]) == (a_tx.max_fee_per_gas, tip)
