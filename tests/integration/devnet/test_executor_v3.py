"""The Executor trades through real Uniswap V3 pools (npm v3-core 1.0.1 on anvil), alone and
mixed with V2 pairs, in both funding modes: the executor's WETH grows by exactly the profit our
independent models (amm/v3.py, V2 getAmountOut) predict, passed as `minProfit` so the contract
itself enforces it to the wei; every other token balance of the executor is unchanged."""

from __future__ import annotations

import pytest
from mev_common.executor import V3_HOP, encode_execute
from mev_ops.devnet.artifacts import load_artifact
from web3.logs import DISCARD

from tests.integration.devnet.conftest import Devnet, custom_error
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
    assert devnet.executor.functions.V3_HOP().call() == V3_HOP  # the fee word's flag
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


@pytest.mark.usefixtures("chain_snapshot")
def test_storage_commit_build_trades_v3_and_refuses_forged_v3_callbacks(devnet: Devnet) -> None:
    """The build for chains without TSTORE (shanghai, HyperEVM): a V3 flash cycle earns the
    modelled profit, the commitment slot is zero afterwards, a forged callback is refused."""
    deployer = devnet.user(0)
    bot = devnet.bot()
    dexes = [
        (d["factory"], bytes.fromhex(d["init_code_hash"][2:])) for d in devnet.deployment["dexes"]
    ]
    beneficiary = devnet.deployment["executor"]["beneficiary"]
    art = load_artifact("ExecutorStorageCommit")
    tx, address = deployer.deploy(art, [bot.address, beneficiary, dexes], 6_000_000)
    assert devnet.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    legacy = devnet.w3.eth.contract(address=address, abi=art.abi)
    for dex in devnet.deployment["v3_dexes"]:
        code_hash = bytes.fromhex(dex["init_code_hash"][2:])
        allow = legacy.encode_abi("setV3Factory", [dex["factory"], code_hash, True])
        receipt = devnet.w3.eth.wait_for_transaction_receipt(bot.send(address, allow, 200_000))
        assert receipt["status"] == 1
    legs, amount = ROUTES["v3-v3"]
    profit = expected_outputs(devnet, legs, amount)[-1] - amount
    assert profit > 0
    weth = devnet.token("WETH")
    fund = weth.encode_abi("transfer", [address, amount])
    sender = devnet.user(1)
    assert (
        devnet.w3.eth.wait_for_transaction_receipt(sender.send(weth.address, fund, 100_000))[
            "status"
        ]
        == 1
    )
    data = encode_execute(exec_hops(devnet, legs), amount, profit, True)
    receipt = devnet.w3.eth.wait_for_transaction_receipt(bot.send(address, data, 1_500_000))
    assert receipt["status"] == 1
    assert devnet.balance("WETH", address) == amount + profit
    # owner 0, pendingOwner 1, beneficiary 2, factories 3, V3 factories 4, commitment 5
    assert devnet.w3.eth.get_storage_at(address, 4) == (2).to_bytes(32, "big")
    assert devnet.w3.eth.get_storage_at(address, 5) == b"\x00" * 32
    forged = legacy.encode_abi("uniswapV3SwapCallback", [amount, 0, b"\x00" * 32])
    args = custom_error(devnet.revert_data(bot.address, address, forged),
                        "UnexpectedV3Callback(address)")  # fmt: skip
    assert args == (bot.address.lower(),)
