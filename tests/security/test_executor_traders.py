"""Trader keys on the Executor (nonce lanes), on a real anvil with the real contracts: the owner
names extra hot sender accounts (`setTrader`) that may `execute` and nothing else; a removed
trader, a stranger, and every trader named by an owner who has since lost the contract cannot.
Same arena as test_executor_attacks.py (executor balances checked to the wei on each refusal)."""

from __future__ import annotations

from typing import Any

import pytest
from mev_common.executor import TRADER_EXTRA_GAS, decode_execute, encode_execute
from mev_ops.devnet.sender import Sender

from tests.integration.devnet import conftest as devnet_conftest
from tests.integration.devnet.conftest import Devnet
from tests.security.test_executor_attacks import (
    STRANGER,
    WETH,
    Arena,
    arena,
    attempt,
    deploy,
    hop,
    mined,
)

devnet = devnet_conftest.devnet
chain_snapshot = devnet_conftest.chain_snapshot
__all__ = ["arena"]  # the attack module's fixture, used here too

pytestmark = pytest.mark.usefixtures("chain_snapshot")

TRADER = 5  # devnet account index of the lane key under test (a funded EOA)


def set_trader(
    devnet: Devnet, sender: Sender, trader: str, allowed: bool, executor: Any = None
) -> Any:
    executor = devnet.executor if executor is None else executor
    data = executor.encode_abi("setTrader", [trader, allowed])
    return mined(devnet, sender, executor.address, data)


def profitable_trade(devnet: Devnet) -> tuple[Any, int]:
    """A whale makes WETH cheap on B: the cycle A(WETH->USDC), B(USDC->WETH) pays; returns
    (execute calldata with minProfit = the exact profit, that profit)."""
    user = devnet.user(1)
    router = devnet.router("B")
    tokens = devnet.deployment["tokens"]
    path = [tokens["WETH"]["address"], tokens["USDC"]["address"]]
    swap = router.encode_abi("swapExactTokensForTokens", [60 * WETH, 0, path, user.address, 2**40])
    assert mined(devnet, user, router.address, swap, 300_000)["status"] == 1
    legs = [("A", "WETH", "USDC"), ("B", "USDC", "WETH")]
    hops = [
        hop(devnet.pair(d, a, b)["address"], tokens[a]["address"], tokens[b]["address"])
        for d, a, b in legs
    ]
    profit = devnet.expected_out(legs, 5 * WETH) - 5 * WETH
    assert profit > 0
    return devnet.executor.encode_abi("execute", [hops, 5 * WETH, profit, True]), profit


def test_a_trader_executes_and_a_removed_one_cannot(devnet: Devnet, arena: Arena) -> None:
    executor = devnet.executor
    bot, trader = devnet.bot(), devnet.user(TRADER)
    assert executor.functions.isTrader(trader.address).call() is False
    assert executor.functions.isTrader(bot.address).call() is True  # the owner always may
    receipt = set_trader(devnet, bot, trader.address, True)
    assert receipt["status"] == 1
    events = executor.events.TraderSet().process_receipt(receipt)
    assert [(e.args.trader, e.args.allowed) for e in events] == [(trader.address, True)]
    assert executor.functions.isTrader(trader.address).call() is True
    data, profit = profitable_trade(devnet)
    before = {a: devnet.balance("WETH", a) for a in (executor.address, trader.address)}
    assert mined(devnet, trader, executor.address, data)["status"] == 1
    assert devnet.balance("WETH", executor.address) == before[executor.address] + profit
    assert devnet.balance("WETH", trader.address) == before[trader.address]  # profit stays

    assert set_trader(devnet, bot, trader.address, False)["status"] == 1
    assert executor.functions.isTrader(trader.address).call() is False
    data, _ = profitable_trade(devnet)
    args = attempt(devnet, arena, trader, executor.address, data, "NotTrader(address)")
    assert args == (trader.address.lower(),)


def test_a_stranger_can_neither_execute_nor_name_a_trader(devnet: Devnet, arena: Arena) -> None:
    executor = devnet.executor
    stranger = devnet.user(STRANGER)
    data, _ = profitable_trade(devnet)
    args = attempt(devnet, arena, stranger, executor.address, data, "NotTrader(address)")
    assert args == (stranger.address.lower(),)
    name_self = executor.encode_abi("setTrader", [stranger.address, True])
    args = attempt(devnet, arena, stranger, executor.address, name_self, "NotOwner(address)")
    assert args == (stranger.address.lower(),)
    assert executor.functions.isTrader(stranger.address).call() is False
    zero = executor.encode_abi("setTrader", ["0x" + "00" * 20, True])
    assert attempt(devnet, arena, devnet.bot(), executor.address, zero, "ZeroAddress()") == ()


def test_a_trader_cannot_sweep_configure_or_move_ownership(devnet: Devnet, arena: Arena) -> None:
    executor = devnet.executor
    bot, trader, other = devnet.bot(), devnet.user(TRADER), devnet.user(STRANGER)
    assert set_trader(devnet, bot, trader.address, True)["status"] == 1
    weth = devnet.deployment["weth"]
    code_hash = b"\x11" * 32
    cases = [
        (executor.encode_abi("sweep", [weth, 1]), "NotOwnerOrBeneficiary(address)"),
        (executor.encode_abi("sweepEth", [0]), "NotOwnerOrBeneficiary(address)"),
        (
            executor.encode_abi("transferOwnership", [trader.address]),
            "NotOwnerOrBeneficiary(address)",
        ),
        (executor.encode_abi("setFactory", [trader.address, code_hash, True]), "NotOwner(address)"),
        (
            executor.encode_abi("setV3Factory", [trader.address, code_hash, True]),
            "NotOwner(address)",
        ),
        (executor.encode_abi("setTrader", [other.address, True]), "NotOwner(address)"),
        (executor.encode_abi("setBeneficiary", [trader.address]), "NotBeneficiary(address)"),
    ]
    for data, error in cases:
        args = attempt(devnet, arena, trader, executor.address, data, error)
        assert args == (trader.address.lower(),)
    assert executor.functions.owner().call() == bot.address
    assert executor.functions.pendingOwner().call() == "0x" + "00" * 20
    assert executor.functions.isTrader(other.address).call() is False


def test_traders_named_by_a_previous_owner_are_out(devnet: Devnet, arena: Arena) -> None:
    """A thief holding the hot owner key names its own trader; once the contract changes hands
    (here the owner hands it on; the cold key's take-back is the same two steps), that trader
    cannot execute: traders belong to the owner that named them."""
    executor = devnet.executor
    bot, trader, new = devnet.bot(), devnet.user(TRADER), devnet.user(6)
    assert set_trader(devnet, bot, trader.address, True)["status"] == 1
    move = executor.encode_abi("transferOwnership", [new.address])
    assert mined(devnet, bot, executor.address, move)["status"] == 1
    assert executor.functions.isTrader(trader.address).call() is True  # not moved yet
    accept = executor.encode_abi("acceptOwnership")
    assert mined(devnet, new, executor.address, accept)["status"] == 1
    assert executor.functions.isTrader(trader.address).call() is False
    data, _ = profitable_trade(devnet)
    args = attempt(devnet, arena, trader, executor.address, data, "NotTrader(address)")
    assert args == (trader.address.lower(),)
    assert set_trader(devnet, new, trader.address, True)["status"] == 1  # the new owner may
    assert executor.functions.isTrader(trader.address).call() is True


@pytest.mark.parametrize("hops", [2, 3], ids=["2-hop", "3-hop"])
@pytest.mark.parametrize("build", ["Executor", "ExecutorStorageCommit"])
@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
def test_a_traders_execute_costs_the_owners_plus_exactly_trader_extra_gas(
    devnet: Devnet, flash: bool, build: str, hops: int
) -> None:
    """Simulate runs `execute` as the owner; a trade sent on lane 1+ comes from a trader, whose
    check reads two more (cold) storage slots. Submit prices and books that difference as one
    constant (TRADER_EXTRA_GAS): the same trade on the same state, mined from each, differs by
    exactly that, or less where the owner's gas refund is capped (EXTRA_MEASURED): an upper
    bound, on both builds (ExecutorStorageCommit is what the hyperevm profile deploys)."""
    bot, trader = devnet.bot(), devnet.user(TRADER)
    executor = devnet.executor if build == "Executor" else _fresh(devnet, build, bot)
    assert set_trader(devnet, bot, trader.address, True, executor)["status"] == 1
    data, _ = profitable_trade(devnet)
    if hops == 3:  # the same gap, reached through USDT
        data = _through_usdt(devnet)
    if not flash:  # the same cycle paid from the executor's balance
        call = decode_execute(bytes.fromhex(data[2:]))
        raw = encode_execute(call.hops, call.amount_in, call.min_profit, False)
        data = "0x" + raw.hex()
    used: dict[str, int] = {}
    at = devnet.w3.eth.get_block("latest")["timestamp"] + 12  # same block time: same oracle writes
    for name, sender in (("owner", bot), ("trader", trader)):
        snapshot = devnet.rpc("evm_snapshot", [])
        devnet.rpc("evm_setNextBlockTimestamp", [at])
        receipt = mined(devnet, sender, executor.address, data)
        assert receipt["status"] == 1
        used[name] = receipt["gasUsed"]
        assert devnet.rpc("evm_revert", [snapshot]) is True
    extra = used["trader"] - used["owner"]
    assert extra == EXTRA_MEASURED.get((build, flash, hops), TRADER_EXTRA_GAS)
    assert TRADER_EXTRA_GAS * 4 // 5 <= extra <= TRADER_EXTRA_GAS


# What `execute` from a trader costs over the owner, measured: TRADER_EXTRA_GAS, but for
# ExecutorStorageCommit's 2-hop flash trade: its commitment slot (set, then zeroed in the
# callback) refunds 19,900 more (45,400 in all: it, the intermediate USDC balance 19,900, two
# pair locks 2,800 each), so the owner's refund hits EIP-3529's cap (a fifth of the gas: 44,688
# of 223,440) and the trader's extra gas buys back 712 of it. The 3-hop trade's gas outgrows its
# refunds: exact again.
EXTRA_MEASURED = {("ExecutorStorageCommit", True, 2): TRADER_EXTRA_GAS - 712}


def _through_usdt(devnet: Devnet) -> Any:
    """After profitable_trade's whale: A(WETH->USDT), A(USDT->USDC), B(USDC->WETH), 2 WETH in,
    minProfit 0 (it pays: the gap on B is wide)."""
    tokens = devnet.deployment["tokens"]
    legs = [("A", "WETH", "USDT"), ("A", "USDT", "USDC"), ("B", "USDC", "WETH")]
    hops = [
        hop(devnet.pair(d, a, b)["address"], tokens[a]["address"], tokens[b]["address"])
        for d, a, b in legs
    ]
    return devnet.executor.encode_abi("execute", [hops, 2 * WETH, 0, True])


def _fresh(devnet: Devnet, build: str, owner: Sender) -> Any:
    """A new executor of `build` owned by `owner`, with the devnet executor's V2 factories and
    as much WETH as it holds (an own-balance trade pays from it)."""
    dexes = [
        (d["factory"], bytes.fromhex(d["init_code_hash"][2:])) for d in devnet.deployment["dexes"]
    ]
    beneficiary = devnet.deployment["executor"]["beneficiary"]
    executor = deploy(devnet, devnet.user(0), build, [owner.address, beneficiary, dexes])
    weth = devnet.token("WETH")
    fund = weth.encode_abi("transfer", [executor.address, 10 * WETH])
    assert mined(devnet, devnet.user(1), weth.address, fund)["status"] == 1
    return executor
