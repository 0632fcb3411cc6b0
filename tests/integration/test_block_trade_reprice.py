"""A block trade a pending swap runs ahead of, re-priced by detect (services/detect/reprice.py)
and checked against the chain: real anvil mining by fee order, the real deployment, Router02
and Executor. WETH is cheap on DEX B (a user dumped 60 WETH there); our block trade sells
5 WETH for USDC on A and buys WETH back on B, bidding 1 gwei with the minProfit bound detect
assumes. A user's swap through A tipping 2 gwei is mined first:

- selling USDC on A (the opposite of our hop) only improves our price: before this change
  detect gave the trade up (`block_crowded`); now it is kept, and it lands with exactly the
  profit detect re-priced it at on the state that swap leaves (the executor's WETH, to the wei);
- selling 40 WETH on A (our direction) leaves it short of its minProfit: detect gives it up,
  and sent anyway it reverts on chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from mev_common.amm.backrun import apply_router_swap
from mev_common.amm.v2 import V2Pool, pair_key
from mev_common.chain.router_calls import decode_router_call
from mev_common.messages import Hop, Opportunity, PendingTx
from mev_common.settings import StrategySettings

from services.detect.pending_book import PendingBook
from services.detect.reprice import (
    Pool,
    Trade,
    min_profit_bound,
    profit_on,
    survives,
    trade_of,
)
from tests.integration.devnet.conftest import Devnet, amount_out, reverted_after
from tests.support.stacked_world import victim
from tests.support.submit_world import CHAIN, GWEI, WETH, manual_mining_devnet, mine, unbalance

pytestmark = pytest.mark.timeout(180)
LEGS = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]
AMOUNT_IN = 5 * WETH
OUR_TIP = GWEI  # submit.priority_fee's default: what a block trade bids
STRATEGY = StrategySettings(min_profit=10**14, max_gas_price=50 * GWEI)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from manual_mining_devnet(tmp_path_factory.mktemp("reprice-devnet"))


@pytest.fixture
def devnet(world: Devnet) -> Iterator[Devnet]:
    with reverted_after(world):
        yield world


def pools(devnet: Devnet) -> dict[str, Pool]:
    """The cycle's pairs on the chain's latest state, as detect's registry holds them."""
    tokens = devnet.deployment["tokens"]
    out: dict[str, Pool] = {}
    for dex, a, b in LEGS:
        pair = devnet.pair(dex, a, b)
        r0, r1 = devnet.reserves(pair, pair["symbol0"])
        t0, t1 = tokens[pair["symbol0"]]["address"], tokens[pair["symbol1"]]["address"]
        out[pair["address"]] = V2Pool(pair["address"], t0, t1, r0, r1, 30)
    return out


def block_trade(devnet: Devnet) -> tuple[Opportunity, Trade]:
    """The block trade on the latest state, its profit the test's own V2 math."""
    tokens = devnet.deployment["tokens"]
    out, hops = AMOUNT_IN, []
    for dex, a, b in LEGS:
        pair = devnet.pair(dex, a, b)
        amount = out
        out = amount_out(amount, *devnet.reserves(pair, a))
        hops.append(Hop(pool=pair["address"], token_in=tokens[a]["address"],
                        token_out=tokens[b]["address"], fee_bps=30, amount_in=amount,
                        amount_out=out))  # fmt: skip
    head = devnet.w3.eth.get_block("latest")
    opp = Opportunity(
        id="block-trade", chain_id=CHAIN, strategy="cross_dex_arbitrage",
        trigger=head["hash"].to_0x_hex(), block_number=head["number"],
        block_hash=head["hash"].to_0x_hex(), hops=hops, amount_in=AMOUNT_IN,
        profit_token=tokens["WETH"]["address"], expected_profit=out - AMOUNT_IN,
        max_fee_per_gas=2 * int(head["baseFeePerGas"]) + OUR_TIP,
    )  # fmt: skip
    trade = trade_of(opp, pools(devnet), min_profit_bound(opp, STRATEGY))
    assert profit_on(trade, trade.base) == opp.expected_profit > trade.floor > 0
    return opp, trade


def replay(devnet: Devnet) -> Any:
    """detect's replay of a Router02 swap on DEX A (block_path.replayer's V2 path)."""
    head = devnet.w3.eth.get_block("latest")

    def run(tx: PendingTx, state: Mapping[str, Pool]) -> Mapping[str, Pool] | None:
        swap = decode_router_call(tx.input, tx.value)
        assert swap is not None
        a = state[devnet.pair("A", "WETH", "USDC")["address"]]  # DEX A's pair, by pair_key
        assert isinstance(a, V2Pool)
        pairs = {pair_key(a.token0, a.token1): a}
        applied = apply_router_swap(swap, pairs, 30, timestamp=int(head["timestamp"]) + 1)
        return None if applied is None else {**state, **applied.pools}

    return run


def crowd(devnet: Devnet, sells: str, amount: int) -> tuple[bytes, PendingTx, bool]:
    """A user's swap on A tipping 2 gwei, booked as detect books it; whether the block trade
    still pays behind it (and that today's rule gives it up)."""
    base = int(devnet.w3.eth.get_block("latest")["baseFeePerGas"])
    raw, tx = victim(devnet, 2, amount, 2 * GWEI, base, sells=sells)
    _, trade = block_trade(devnet)
    book = PendingBook()
    book.add(tx.hash, [devnet.pair("A", "WETH", "USDC")["address"]], 2 * GWEI, 0, tx.sender,
             tx.nonce, tx)  # fmt: skip
    ahead = book.ahead_of("", OUR_TIP, trade.pools)
    assert ahead == [(2 * GWEI, tx.hash, tx)]  # before this change: block_crowded
    return raw, tx, survives(trade, ahead, replay(devnet))


def send_both(devnet: Devnet, raw: bytes, min_profit: int) -> tuple[dict[str, Any], int]:
    """The user's swap and our trade (bidding less, its fee cap as submit sets it: anvil orders
    by the cap) in the mempool, one block mined; our receipt and the executor's WETH gain."""
    tokens, executor = devnet.deployment["tokens"], devnet.executor
    hops = [(devnet.pair(d, a, b)["address"], tokens[a]["address"], tokens[b]["address"], 30)
            for d, a, b in LEGS]  # fmt: skip
    data = executor.encode_abi("execute", [hops, AMOUNT_IN, min_profit, False])
    before = devnet.balance("WETH", executor.address)
    base = int(devnet.w3.eth.get_block("latest")["baseFeePerGas"])
    user_hash = devnet.w3.eth.send_raw_transaction(raw)
    ours = devnet.bot().send(
        executor.address, data, 400_000, tip=OUR_TIP, max_fee=2 * base + OUR_TIP
    )
    mine(devnet)
    block = devnet.w3.eth.get_block("latest")
    assert list(block["transactions"]) == [user_hash, ours]
    receipt = devnet.w3.eth.get_transaction_receipt(ours)
    return dict(receipt), devnet.balance("WETH", executor.address) - before


def test_a_block_trade_behind_an_opposite_swap_lands_with_its_repriced_profit(
    devnet: Devnet,
) -> None:
    unbalance(devnet)
    opp, trade = block_trade(devnet)
    usdc = amount_out(10 * WETH, *devnet.reserves(devnet.pair("A", "WETH", "USDC"), "WETH"))
    raw, tx, pays = crowd(devnet, "USDC", usdc)
    assert pays
    state = replay(devnet)(tx, trade.base)
    assert state is not None
    repriced = profit_on(trade, state)
    assert repriced > opp.expected_profit  # the swap improved our price on A
    receipt, gained = send_both(devnet, raw, trade.floor)
    assert receipt["status"] == 1
    assert gained == repriced  # detect's re-pricing is the chain's, to the wei


def test_a_block_trade_behind_a_large_swap_its_way_is_given_up_and_would_revert(
    devnet: Devnet,
) -> None:
    unbalance(devnet)
    _, trade = block_trade(devnet)
    raw, tx, pays = crowd(devnet, "WETH", 40 * WETH)
    assert not pays
    state = replay(devnet)(tx, trade.base)
    assert state is not None and profit_on(trade, state) < trade.floor
    receipt, gained = send_both(devnet, raw, trade.floor)
    assert receipt["status"] == 0 and gained == 0
