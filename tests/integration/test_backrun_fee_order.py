"""Where fee-ordered anvil puts our backrun among its victim and a later user bidding the same.

anvil `--order fees` mines by max fee per gas, ties in arrival order (measured, anvil 1.7.1:
the tip does not order at all: a later tx with the victim's max fee and a higher tip still
goes after). The devnet flow's users cap their max fee at tip + a headroom. Our backrun bid
one wei under its victim's tip with a max fee of 2 x base + that (services/submit/fees.py before),
so a user sending after it with the victim's tip and max fee was mined between the victim and
our trade: ours met a state it was not proven on and reverted (gas lost). Now it bids the
victim's max fee (and one wei under its tip, for builders ordering by effective tip): tied on
anvil's order, it lands right after the victim (sent after it) and the later user after ours.

Real anvil (manual mining), the real deployment and Executor, simulate's warm EVM in-process
and a real submit process on real NATS: V buys USDC with WETH on DEX A, our cycle buys USDC on
B and sells it on A, and U (sent once ours is in flight) sells USDC on A with V's fees, enough
that behind it our trade could not pay its minProfit.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mev_common.bus import Bus
from mev_ops.devnet.anvil import AnvilNode, free_port, wait_for_rpc
from mev_ops.devnet.artifacts import anvil_binary

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet, amount_out
from tests.support.chain import rpc
from tests.support.stacked_world import (
    best_amount,
    cycle_profit,
    mined_in_a_row,
    opportunity,
    reserves,
    stacking_simulator,
    swap,
    victim,
)
from tests.support.submit_world import (
    GWEI,
    WETH,
    active_submit,
    arbitrage_bundle,
    ledger_rows,
    manual_mining_devnet,
    outcome_of,
    publish_bundle,
    tx_states,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
TIP = 2 * GWEI


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("fee-order-devnet"))


@pytest.fixture
async def submit_db(
    devnet: Devnet, nats_server: NatsEndpoint, tmp_path: Path
) -> AsyncIterator[Path]:
    async with active_submit(devnet, nats_server.url, tmp_path):
        yield tmp_path / "mev-bot.db"


async def test_a_later_user_with_the_victims_fees_lands_behind_our_backrun(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    simulator, head = await stacking_simulator(devnet, tmp_path)
    base = int(head["baseFeePerGas"])
    v_raw, v_tx = victim(devnet, 2, 40 * WETH, TIP, base)
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)  # V
    amount = best_amount(state)
    profit = cycle_profit(state, amount)
    verdict = simulator.simulate(opportunity(devnet, "order", head, amount, profit, v_tx), 0.0)
    bundle = verdict.bundle
    assert bundle is not None and bundle.simulated_profit == profit, verdict
    # U sells about 30 WETH worth of USDC on A with V's exact tip and max fee: behind it (on
    # [V, U]) our trade would earn less than the minProfit its calldata enforces
    usdc = amount_out(30 * WETH, *state["A"])
    u_raw, u_tx = victim(devnet, 3, usdc, TIP, base, sells="USDC")
    assert (u_tx.max_priority_fee_per_gas, u_tx.max_fee_per_gas) == (
        v_tx.max_priority_fee_per_gas,
        v_tx.max_fee_per_gas,
    )
    behind_u = reserves(devnet)
    swap(behind_u, "A", True, 40 * WETH)
    swap(behind_u, "A", False, usdc)
    assert cycle_profit(behind_u, amount) < bundle.min_profit

    v_hash = devnet.w3.eth.send_raw_transaction(v_raw)
    await publish_bundle(bus, bundle)
    await wait_for(lambda: tx_states(submit_db, bundle.id) == [("trade", "sent")], what="ours")
    u_hash = devnet.w3.eth.send_raw_transaction(u_raw)
    devnet.rpc("anvil_mine", ["0x1"])
    (outcome,) = await outcome_of(bus, bundle.id)
    mined_in_a_row(devnet, [v_hash, outcome.tx_hash, u_hash])  # V, ours, U; all succeeded
    assert (outcome.status, outcome.realized_profit) == ("included", profit)
    # how: ours bid V's max fee and one wei under its tip, to the wei
    ours = devnet.w3.eth.get_transaction(outcome.tx_hash)
    assert (ours["maxPriorityFeePerGas"], ours["maxFeePerGas"]) == (TIP - 1, v_tx.max_fee_per_gas)
    assert bundle.victim_max_fee_per_gas == v_tx.max_fee_per_gas


@pytest.fixture
def other_node(devnet: Devnet, tmp_path: Path) -> Iterator[AnvilNode]:
    """A second node: anvil forked from the devnet's head (same chain, blocks and hashes), no
    gossip between the two, mining only when told: a node that never got the victim."""
    port = free_port()
    cmd = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--fork-url",
           devnet.node.rpc_url, "--no-mining", "--order", "fees"]  # fmt: skip
    with (tmp_path / "other-anvil.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    node = AnvilNode(pid=proc.pid, port=port, process=proc)
    try:
        wait_for_rpc(node.rpc_url, 15.0, proc)
        yield node
    finally:
        node.stop()


async def test_a_backrun_reaches_only_its_victims_node_a_block_trade_every_node(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, other_node: AnvilNode, tmp_path: Path
) -> None:
    """Submit on two endpoints: "anvil", where ingest saw the victim, and "other", which never
    had it. Sent everywhere (before), "other" held our backrun without its victim: mined there
    alone it reverts (gas lost). Now it reaches "anvil" alone; a block trade still both."""
    other = other_node.rpc_url
    simulator, head = await stacking_simulator(devnet, tmp_path)
    v_raw, v_tx = victim(devnet, 4, 40 * WETH, TIP, int(head["baseFeePerGas"]))
    state = reserves(devnet)
    swap(state, "A", True, 40 * WETH)
    amount = best_amount(state)
    seen = v_tx.model_copy(update={"seen_on": "anvil"})  # as ingest names it
    opp = opportunity(devnet, "nodes", head, amount, cycle_profit(state, amount), seen)
    bundle = simulator.simulate(opp, 0.0).bundle
    assert bundle is not None and bundle.victim_seen_on == "anvil"  # simulate carries it
    bot = devnet.deployment["bot"]
    ours_pending = rpc(other, "eth_getTransactionCount", [bot, "pending"])
    async with active_submit(
        devnet, nats_server.url, tmp_path / "s", [{"name": "other", "url": other}]
    ):
        db = tmp_path / "s" / "mev-bot.db"
        devnet.w3.eth.send_raw_transaction(v_raw)  # the victim reaches "anvil" only
        await publish_bundle(bus, bundle)
        await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="backrun")
        [(sent,)] = ledger_rows(db, "SELECT hash FROM txs WHERE bundle_id = ?", bundle.id)
        assert pooled(devnet.node) == {sent, v_tx.hash}
        assert pooled(other_node) == set()  # (eth_getTransactionByHash asks the fork's source)
        assert rpc(other, "eth_getTransactionCount", [bot, "pending"]) == ours_pending
        devnet.rpc("anvil_mine", ["0x1"])
        fork_again(other_node, devnet)  # both nodes on one head again, for submit's reads
        (outcome,) = await outcome_of(bus, bundle.id)
        assert (outcome.status, outcome.realized_profit) == ("included", bundle.simulated_profit)

        # a block trade (no victim) on the head both nodes share: handed to both
        block_trade, _ = arbitrage_bundle(devnet, "bundle:block-nodes")
        fork_again(other_node, devnet)
        await publish_bundle(bus, block_trade)
        await wait_for(lambda: tx_states(db, block_trade.id) == [("trade", "sent")], what="block")
        [(sent,)] = ledger_rows(db, "SELECT hash FROM txs WHERE bundle_id = ?", block_trade.id)
        assert pooled(devnet.node) == pooled(other_node) == {sent}
        devnet.rpc("anvil_mine", ["0x1"])
        fork_again(other_node, devnet)  # else submit may ask "other" (ranked first) for receipts
        (outcome,) = await outcome_of(bus, block_trade.id)
        assert outcome.status == "included"


def fork_again(node: AnvilNode, devnet: Devnet) -> None:
    """`node` forked afresh from the devnet's head (its own pool emptied)."""
    rpc(node.rpc_url, "anvil_reset", [{"forking": {"jsonRpcUrl": devnet.node.rpc_url}}])


def pooled(node: AnvilNode) -> set[str]:
    """The hashes in `node`'s own pending pool."""
    content = rpc(node.rpc_url, "txpool_content", [])
    return {tx["hash"] for by_nonce in content["pending"].values() for tx in by_nonce.values()}
