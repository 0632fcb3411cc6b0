"""Executor on real anvil with the real Uniswap V2 bytecode: exact profits, reverts, access control.

Expected amounts come from an integer getAmountOut written in the test, over reserves read from
the pairs, so a wei of disagreement with the contract fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.devnet.conftest import DEADLINE, Devnet, custom_error

pytestmark = pytest.mark.usefixtures("chain_snapshot")

WETH = 10**18
GAS = 1_000_000
GAS_BY_HOPS: dict[str, int] = {}
# Gas of each profitable cycle below (docs/DEVNET.md's table): exact, so a contract change
# that costs gas shows here; update both together.
GAS_USED = {
    (2, False): 161_564, (2, True): 174_593,
    (3, False): 218_387, (3, True): 231_877,
    (4, False): 275_169, (4, True): 289_119,
}  # fmt: skip


def whale_dump(devnet: Devnet, dex: str, sell: str, buy: str, amount: int) -> None:
    """A user sells `amount` of `sell` for `buy` on `dex`: the price gap the tests arbitrage."""
    user = devnet.user(1)
    router = devnet.router(dex)
    path = [devnet.deployment["tokens"][s]["address"] for s in (sell, buy)]
    data = router.encode_abi("swapExactTokensForTokens", [amount, 0, path, user.address, DEADLINE])
    receipt = devnet.w3.eth.wait_for_transaction_receipt(user.send(router.address, data, 300_000))
    assert receipt["status"] == 1


def cycle(devnet: Devnet, legs: list[tuple[str, str, str]]) -> list[tuple[str, str, str, int]]:
    """Hops for legs of (dex, token in, token out)."""
    tokens = devnet.deployment["tokens"]
    return [
        (devnet.pair(dex, a, b)["address"], tokens[a]["address"], tokens[b]["address"], 30)
        for dex, a, b in legs
    ]


def execute(devnet: Devnet, hops: list[Any], amount_in: int, min_profit: int, flash: bool) -> Any:
    """Mined one second after the head, so every pair it touches writes its cumulative prices
    (a pair's first touch in a new second): the gas is then the same on every run."""
    bot = devnet.bot()
    data = devnet.executor.encode_abi("execute", [hops, amount_in, min_profit, flash])
    head = devnet.w3.eth.get_block("latest")["timestamp"]
    devnet.rpc("evm_setNextBlockTimestamp", [head + 1])
    return devnet.w3.eth.wait_for_transaction_receipt(bot.send(devnet.executor.address, data, GAS))


TWO_HOPS = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]
THREE_HOPS = [("A", "WETH", "USDC"), ("A", "USDC", "DAI"), ("B", "DAI", "WETH")]
FOUR_HOPS = [
    ("A", "WETH", "USDT"),
    ("A", "USDT", "USDC"),
    ("A", "USDC", "DAI"),
    ("B", "DAI", "WETH"),
]


@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
@pytest.mark.parametrize(
    "legs",
    [TWO_HOPS, THREE_HOPS, FOUR_HOPS],
    ids=["2-hop", "3-hop", "4-hop"],
)
def test_profitable_cycle_pays_exact_profit_to_owner(
    devnet: Devnet, legs: list[tuple[str, str, str]], flash: bool
) -> None:
    # Dump WETH on B's pool of the cycle's last leg: WETH is cheap there, buy it back there.
    whale_dump(devnet, "B", "WETH", legs[-1][1], 60 * WETH)
    amount_in = 5 * WETH
    profit = devnet.expected_out(legs, amount_in) - amount_in
    assert profit > 0
    executor = devnet.executor.address
    before = devnet.balance("WETH", executor)

    receipt = execute(devnet, cycle(devnet, legs), amount_in, profit, flash)

    assert receipt["status"] == 1
    assert devnet.balance("WETH", executor) - before == profit
    GAS_BY_HOPS[f"{len(legs)}-hop {'flash' if flash else 'own'}"] = receipt["gasUsed"]
    assert receipt["gasUsed"] == GAS_USED[(len(legs), flash)]
    beneficiary = devnet.deployment["executor"]["beneficiary"]
    beneficiary_before = devnet.balance("WETH", beneficiary)
    bot = devnet.bot()
    data = devnet.executor.encode_abi("sweep", [devnet.deployment["weth"], profit])
    assert (
        devnet.w3.eth.wait_for_transaction_receipt(bot.send(executor, data, 200_000))["status"] == 1
    )
    assert devnet.balance("WETH", beneficiary) - beneficiary_before == profit
    assert devnet.balance("WETH", executor) == before


@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
def test_unprofitable_cycle_reverts_with_min_profit_error_and_changes_nothing(
    devnet: Devnet, flash: bool
) -> None:
    amount_in = 5 * WETH
    loss = devnet.expected_out(TWO_HOPS, amount_in) - amount_in
    assert loss < 0  # fresh pools differ by less than the two fees
    hops = cycle(devnet, TWO_HOPS)
    executor = devnet.executor
    data = executor.encode_abi("execute", [hops, amount_in, 0, flash])
    error = devnet.revert_data(devnet.deployment["bot"], executor.address, data)
    assert custom_error(error, "InsufficientProfit(int256,uint256)") == (loss, 0)

    pairs = [devnet.pair(dex, a, b) for dex, a, b in TWO_HOPS]
    state_before = (
        [devnet.reserves(p, "WETH") for p in pairs],
        devnet.balance("WETH", executor.address),
    )
    receipt = execute(devnet, hops, amount_in, 0, flash)
    assert receipt["status"] == 0
    assert (
        [devnet.reserves(p, "WETH") for p in pairs],
        devnet.balance("WETH", executor.address),
    ) == (state_before)


def test_min_profit_above_the_gain_reverts(devnet: Devnet) -> None:
    whale_dump(devnet, "B", "WETH", "USDC", 60 * WETH)
    amount_in = 5 * WETH
    profit = devnet.expected_out(TWO_HOPS, amount_in) - amount_in
    data = devnet.executor.encode_abi(
        "execute", [cycle(devnet, TWO_HOPS), amount_in, profit + 1, False]
    )
    error = devnet.revert_data(devnet.deployment["bot"], devnet.executor.address, data)
    assert custom_error(error, "InsufficientProfit(int256,uint256)") == (profit, profit + 1)


def test_broken_cycle_is_rejected(devnet: Devnet) -> None:
    legs = [("A", "WETH", "USDC"), ("B", "USDC", "DAI")]  # ends in DAI, not WETH
    data = devnet.executor.encode_abi("execute", [cycle(devnet, legs), WETH, 0, False])
    error = devnet.revert_data(devnet.deployment["bot"], devnet.executor.address, data)
    assert custom_error(error, "InvalidPath()") == ()


def test_non_owner_cannot_execute(devnet: Devnet) -> None:
    whale_dump(devnet, "B", "WETH", "USDC", 60 * WETH)
    user = devnet.user(2)
    data = devnet.executor.encode_abi("execute", [cycle(devnet, TWO_HOPS), WETH, 0, False])
    error = devnet.revert_data(user.address, devnet.executor.address, data)
    assert custom_error(error, "NotTrader(address)") == (user.address.lower(),)
    receipt = devnet.w3.eth.wait_for_transaction_receipt(
        user.send(devnet.executor.address, data, GAS)
    )
    assert receipt["status"] == 0


def test_forged_callback_reverts(devnet: Devnet) -> None:
    executor = devnet.executor
    forged = executor.encode_abi("uniswapV2Call", [executor.address, 0, 10**18, b"\x01"])
    for caller in (devnet.user(2).address, devnet.deployment["bot"]):
        error = devnet.revert_data(caller, executor.address, forged)
        assert custom_error(error, "UnexpectedCallback(address)") == (caller.lower(),)

    # A genuine pair calling back outside our own execute: someone flash-swaps with the
    # executor as recipient, hoping it pays for the loan. The callback must refuse.
    pair = devnet.pair("A", "WETH", "USDC")
    pair_c = devnet.w3.eth.contract(address=pair["address"], abi=_pair_abi())
    attacker = devnet.user(3)
    swap = pair_c.encode_abi("swap", [1, 0, executor.address, b"\x01"])
    error = devnet.revert_data(attacker.address, pair["address"], swap)
    assert custom_error(error, "UnexpectedCallback(address)") == (pair["address"].lower(),)


def test_sweeps_pay_only_the_beneficiary_and_strangers_are_refused(devnet: Devnet) -> None:
    executor, weth = devnet.executor, devnet.deployment["weth"]
    user, bot = devnet.user(2), devnet.bot()
    w3 = devnet.w3
    assert w3.eth.wait_for_transaction_receipt(
        user.send(executor.address, b"", 100_000, value=WETH)
    )["status"]
    for data in (
        executor.encode_abi("sweep", [weth, 1]),
        executor.encode_abi("sweepEth", [1]),
        executor.encode_abi("transferOwnership", [user.address]),
    ):
        error = devnet.revert_data(user.address, executor.address, data)
        assert custom_error(error, "NotOwnerOrBeneficiary(address)") == (user.address.lower(),)

    target = devnet.deployment["executor"]["beneficiary"]
    eth_before, weth_before = w3.eth.get_balance(target), devnet.balance("WETH", target)
    for data in (
        executor.encode_abi("sweepEth", [WETH]),
        executor.encode_abi("sweep", [weth, 2 * WETH]),
    ):
        assert (
            w3.eth.wait_for_transaction_receipt(bot.send(executor.address, data, 200_000))["status"]
            == 1
        )
    assert w3.eth.get_balance(target) - eth_before == WETH
    assert devnet.balance("WETH", target) - weth_before == 2 * WETH


def test_report_gas_per_hop_count(devnet: Devnet) -> None:
    """Runs after the profitable cases: prints gas used per hop count (for docs/DEVNET.md);
    each case asserts its own exact figure."""
    print("\nexecutor gas used:", ", ".join(f"{k} {v}" for k, v in sorted(GAS_BY_HOPS.items())))


def _pair_abi() -> list[Any]:
    from mev_ops.devnet.artifacts import load_artifact

    return load_artifact("UniswapV2Pair").abi
