"""The Executor trades through real Uniswap V3 pools (npm v3-core 1.0.1 on anvil), alone and
mixed with V2 pairs, in both funding modes: the executor's WETH grows by exactly the profit our
independent models (amm/v3.py, V2 getAmountOut) predict, passed as `minProfit` so the contract
itself enforces it to the wei; every other token balance of the executor is unchanged."""

from __future__ import annotations

import pytest
from mev_common.executor import encode_execute
from web3.logs import DISCARD

from tests.integration.devnet.conftest import Devnet
from tests.integration.devnet.v3_routes import Leg, exec_hops, expected_outputs

WETH = 10**18
ROUTES = {
    # WETH sells higher on A's 500-pip pool than on B's: both hops V3 (a V3 -> V3 hand-over)
    "v3-v3": ([Leg("A:WETH/USDC:500", "WETH", "USDC"), Leg("B:WETH/USDC:500", "USDC", "WETH")],
              WETH),
    # V2 output straight into... a V3 pool is paid in its callback: V2 -> executor -> V3
    "v2-v3": ([Leg("A:WETH/USDC", "WETH", "USDC"), Leg("B:WETH/USDC:500", "USDC", "WETH")], WETH),
    # V3 -> V3 hand-over inside the route, V2 first
    "v2-v3-v3": ([Leg("A:WETH/USDC", "WETH", "USDC"), Leg("A:USDC/USDT:500", "USDC", "USDT"),
                  Leg("B:WETH/USDT:500", "USDT", "WETH")], WETH),
    # V3 output straight into a V2 pair (WETH made cheap on A's V2 pair first, see below)
    "v3-v2": ([Leg("A:WETH/USDC:500", "WETH", "USDC"), Leg("A:WETH/USDC", "USDC", "WETH")], WETH),
}  # fmt: skip
GAS = {}  # route/flash -> gas used, printed for docs/DEVNET.md (-s)


def make_weth_cheap_on_v2_a(devnet: Devnet) -> None:
    user = devnet.user(1)
    router = devnet.router("A")
    tokens = devnet.deployment["tokens"]
    path = [tokens["WETH"]["address"], tokens["USDC"]["address"]]
    swap = router.encode_abi("swapExactTokensForTokens", [60 * WETH, 0, path, user.address, 2**40])
    receipt = devnet.w3.eth.wait_for_transaction_receipt(user.send(router.address, swap, 300_000))
    assert receipt["status"] == 1


@pytest.mark.usefixtures("chain_snapshot")
@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_v3_and_mixed_cycles_earn_exactly_the_modelled_profit(
    devnet: Devnet, route: str, flash: bool
) -> None:
    legs, amount = ROUTES[route]
    if route == "v3-v2":
        make_weth_cheap_on_v2_a(devnet)
    outs = expected_outputs(devnet, legs, amount)
    profit = outs[-1] - amount
    assert profit > 0, f"{route}: the devnet's prices give {profit}"
    executor = devnet.executor.address
    symbols = list(devnet.deployment["tokens"])
    before = {s: devnet.balance(s, executor) for s in symbols}
    data = encode_execute(exec_hops(devnet, legs), amount, profit, flash)
    # one wei more than the model promises is refused by the contract itself
    greedy = encode_execute(exec_hops(devnet, legs), amount, profit + 1, flash)
    reply = devnet.w3.provider.make_request(
        "eth_call",
        [{"from": devnet.deployment["bot"], "to": executor, "data": "0x" + greedy.hex()}],
    )  # type: ignore[arg-type]
    assert "error" in reply
    bot = devnet.bot()
    receipt = devnet.w3.eth.wait_for_transaction_receipt(bot.send(executor, data, 1_500_000))
    assert receipt["status"] == 1
    after = {s: devnet.balance(s, executor) for s in symbols}
    assert after == {**before, "WETH": before["WETH"] + profit}
    events = devnet.executor.events.Arbitrage().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.amountIn, e.args.profit, e.args.hops) for e in events] == [
        (amount, profit, len(legs))
    ]
    GAS[f"{route}/{'flash' if flash else 'own'}"] = receipt["gasUsed"]
    print(f"gas {route} flash={flash}: {receipt['gasUsed']}")
