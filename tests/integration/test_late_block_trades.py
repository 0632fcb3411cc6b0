"""A block trade of ours that missed the block it was proven for (services/submit/late_blocks.py).

Real anvil mining by hand, the real deployment and Executor, a real submit process on real
NATS. Our block trade (WETH -> USDC on A, back on B; minProfit its exact simulated profit) is
proven on block N and sent; it misses block N + 1 (taken out of the pool while the block is
mined, put back after it), in which a user's swap moves its first pool:

- against it (the user sells WETH on A): at head N + 1 the trade would revert. Before this
  change it stayed in the pool until its deadline and reverted in block N + 2 (~130k gas lost);
  now submit's tracking pass asks the node at the head and cancels it (a 21k-gas 0-value tx on
  its nonce): the ledger books the cancel's gas, the chain shows no revert, to the wei;
- in its favour (the user sells USDC on A): it still pays at N + 1, submit says so and leaves
  it; it lands in N + 2 with the profit this test's own math gives on that state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mev_common.bus import Bus
from mev_common.messages import Bundle
from web3.exceptions import TransactionNotFound, Web3RPCError

from tests.integration.devnet.conftest import DEADLINE, Devnet, reverted_after
from tests.support.submit_world import (
    WETH,
    arbitrage_bundle,
    ledger_rows,
    manual_mining_devnet,
    mine,
    outcome_of,
    publish_bundle,
    submit_db_fixture,
    tx_states,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)
LEGS = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]
AMOUNT_IN = 5 * WETH  # arbitrage_bundle's


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("late-blocks"))


@pytest.fixture
def devnet(world: Devnet) -> Iterator[Devnet]:
    with reverted_after(world):
        yield world


submit_db = submit_db_fixture  # a real submit process on `devnet`; its ledger's path


def swap_on_a(devnet: Devnet, sells: str, amount: int) -> str:
    """User 2 sells `amount` of `sells` for the other token on DEX A (sent, not mined)."""
    user = devnet.user(2)
    router = devnet.router("A")
    tokens = devnet.deployment["tokens"]
    path = [tokens[sells]["address"], tokens["USDC" if sells == "WETH" else "WETH"]["address"]]
    data = router.encode_abi("swapExactTokensForTokens", [amount, 0, path, user.address, DEADLINE])
    return user.send(router.address, data, 300_000).to_0x_hex()


async def miss_block_n1(devnet: Devnet, bus: Bus, db: Path, bundle: Bundle, sells: str,
                        amount: int) -> str:  # fmt: skip
    """Our trade is sent at head N, then misses block N + 1, which mines the user's swap on A;
    it is back in the pool after (unless submit's cancel took its nonce first). Its hash."""
    await publish_bundle(bus, bundle)
    await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="trade sent")
    [(trade_hash, raw)] = ledger_rows(
        db, "SELECT hash, raw FROM txs WHERE bundle_id = ? AND kind = 'trade'", bundle.id
    )
    devnet.rpc("anvil_dropTransaction", [trade_hash])
    user = swap_on_a(devnet, sells, amount)
    assert mine(devnet) == bundle.block_number + 1
    assert devnet.w3.eth.get_transaction_receipt(user)["status"] == 1
    try:
        devnet.w3.eth.send_raw_transaction(raw)
    except Web3RPCError as exc:  # submit's tracking pass was quicker: its cancel holds the nonce
        assert "replacement transaction underpriced" in str(exc), exc
    return str(trade_hash)


async def test_a_block_trade_that_missed_its_block_and_would_revert_is_cancelled(
    devnet: Devnet, bus: Bus, submit_db: Path
) -> None:
    db = submit_db
    bundle, _ = arbitrage_bundle(devnet, "late-block-reverts")
    n = bundle.block_number
    executor, bot = devnet.executor.address, devnet.deployment["bot"]
    weth_before, eth_before = devnet.balance("WETH", executor), int(devnet.w3.eth.get_balance(bot))
    trade_hash = await miss_block_n1(devnet, bus, db, bundle, "WETH", WETH)
    # the state block N + 1 left: our trade's bytes revert there (minProfit)
    assert devnet.revert_data(bot, executor, bundle.data)
    await wait_for(lambda: ("cancel", "sent") in tx_states(db, bundle.id), what="cancel")
    assert mine(devnet) == n + 2
    [outcome] = await outcome_of(bus, bundle.id)
    assert (outcome.status, outcome.realized_profit) == ("replaced", 0), outcome
    assert outcome.reason.startswith("cancelled (withdrawn): nonce "), outcome
    assert (
        f"never mined: block trade proven on block {n} missed block {n + 1}; at head {n + 1} it "
        "reverts (eth_call: execution reverted" in outcome.reason
    ), outcome
    cancel = devnet.w3.eth.get_transaction_receipt(outcome.tx_hash)
    assert (cancel["to"].lower(), cancel["status"], cancel["gasUsed"]) == (bot.lower(), 1, 21_000)
    with pytest.raises(TransactionNotFound):  # never mined: no revert on chain
        devnet.w3.eth.get_transaction_receipt(trade_hash)
    # ledger == chain, to the wei: no WETH moved, only the cancel's gas spent
    assert devnet.balance("WETH", executor) == weth_before
    [(gas_cost,)] = ledger_rows(db, "SELECT gas_cost FROM receipts")
    assert int(gas_cost) == 21_000 * cancel["effectiveGasPrice"]
    assert eth_before - int(devnet.w3.eth.get_balance(bot)) == int(gas_cost)


async def test_a_block_trade_that_missed_its_block_and_still_pays_is_left_to_land(
    devnet: Devnet, bus: Bus, submit_db: Path, tmp_path: Path
) -> None:
    db = submit_db
    bundle, profit = arbitrage_bundle(devnet, "late-block-pays")
    n = bundle.block_number
    executor, bot = devnet.executor.address, devnet.deployment["bot"]
    weth_before, eth_before = devnet.balance("WETH", executor), int(devnet.w3.eth.get_balance(bot))
    usdc = devnet.balance("USDC", devnet.user(2).address) // 100
    trade_hash = await miss_block_n1(devnet, bus, db, bundle, "USDC", usdc)
    expected = devnet.expected_out(LEGS, AMOUNT_IN) - AMOUNT_IN  # this test's math at N + 1
    assert expected > profit  # the user's swap made USDC cheap on A: more than proven

    def still_pays() -> bool:  # submit asked the node at head N + 1, which said it pays
        for line in (tmp_path / "submit.log").read_text(errors="replace").splitlines():
            if "late block trade still pays" in line:
                fields = json.loads(line)
                return bool(fields.get("bundle") == bundle.id and fields.get("head") == n + 1)
        return False

    await wait_for(still_pays, what="submit's check at head N + 1")
    assert mine(devnet) == n + 2
    [outcome] = await outcome_of(bus, bundle.id)
    assert (outcome.status, outcome.tx_hash, outcome.block_number) == ("included", trade_hash,
                                                                       n + 2)  # fmt: skip
    assert tx_states(db, bundle.id) == [("trade", "mined")]  # no cancel
    # ledger == chain, to the wei
    assert outcome.realized_profit == expected
    assert devnet.balance("WETH", executor) - weth_before == expected
    [(gas_cost,)] = ledger_rows(db, "SELECT gas_cost FROM receipts")
    assert eth_before - int(devnet.w3.eth.get_balance(bot)) == int(gas_cost) > 0
