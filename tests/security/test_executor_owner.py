"""The Executor's owner side (issue 11), on a real anvil with the real contracts: strangers
cannot sweep, move ownership or configure; sweeps reach only the beneficiary; ownership moves in
two steps and the cold key can take it back; the storage-commit build (chains without TSTORE)
trades and refuses forged callbacks. Split from test_executor_attacks.py (same arena)."""

from __future__ import annotations

from typing import Any

import pytest
from mev_ops.devnet.sender import Sender

from tests.integration.devnet import conftest as devnet_conftest
from tests.integration.devnet.conftest import CHAIN_ID, Devnet, custom_error
from tests.security.test_executor_attacks import (
    STRANGER,
    WETH,
    Arena,
    arena,
    attempt,
    deploy,
    execute_data,
    hop,
    mined,
)
from tests.security.test_executor_traders import profitable_trade

devnet = devnet_conftest.devnet
chain_snapshot = devnet_conftest.chain_snapshot
__all__ = ["arena"]  # the attack module's fixture, used here too

pytestmark = pytest.mark.usefixtures("chain_snapshot")


def test_strangers_cannot_sweep_move_ownership_or_configure(devnet: Devnet, arena: Arena) -> None:
    executor = devnet.executor
    stranger = devnet.user(STRANGER)
    weth = devnet.deployment["weth"]
    code_hash = b"\x11" * 32
    cases = [
        (executor.encode_abi("sweep", [weth, 1]), "NotOwnerOrBeneficiary(address)"),
        (executor.encode_abi("sweepEth", [0]), "NotOwnerOrBeneficiary(address)"),
        (
            executor.encode_abi("transferOwnership", [stranger.address]),
            "NotOwnerOrBeneficiary(address)",
        ),
        (executor.encode_abi("acceptOwnership"), "NotPendingOwner(address)"),
        (executor.encode_abi("setBeneficiary", [stranger.address]), "NotBeneficiary(address)"),
        (
            executor.encode_abi("setFactory", [stranger.address, code_hash, True]),
            "NotOwner(address)",
        ),
    ]
    for data, error in cases:
        args = attempt(devnet, arena, stranger, executor.address, data, error)
        assert args == (stranger.address.lower(),)
    # The hot key cannot move the beneficiary either: only the cold key can.
    bot = devnet.bot()
    data = executor.encode_abi("setBeneficiary", [bot.address])
    assert attempt(devnet, arena, bot, executor.address, data, "NotBeneficiary(address)") == (
        bot.address.lower(),
    )
    assert executor.functions.owner().call() == devnet.deployment["bot"]
    assert executor.functions.pendingOwner().call() == "0x" + "00" * 20
    assert executor.functions.beneficiary().call() == devnet.deployment["executor"]["beneficiary"]


def test_sweeps_go_only_to_the_beneficiary(devnet: Devnet, arena: Arena) -> None:
    executor, weth = devnet.executor, devnet.deployment["weth"]
    beneficiary_address = devnet.deployment["executor"]["beneficiary"]
    bot = devnet.bot()
    cold = Sender(devnet.w3, _beneficiary_account(), CHAIN_ID)
    assert cold.address == beneficiary_address
    start = {
        a: devnet.balance("WETH", a) for a in (executor.address, beneficiary_address, bot.address)
    }
    assert (
        mined(devnet, bot, executor.address, executor.encode_abi("sweep", [weth, 3 * WETH]))[
            "status"
        ]
        == 1
    )
    assert (
        mined(devnet, cold, executor.address, executor.encode_abi("sweep", [weth, 2 * WETH]))[
            "status"
        ]
        == 1
    )
    assert devnet.balance("WETH", executor.address) == start[executor.address] - 5 * WETH
    assert devnet.balance("WETH", beneficiary_address) == start[beneficiary_address] + 5 * WETH
    assert devnet.balance("WETH", bot.address) == start[bot.address]
    # ETH too: only to the beneficiary.
    funder = devnet.user(STRANGER)
    receipt = devnet.w3.eth.wait_for_transaction_receipt(
        funder.send(executor.address, b"", 100_000, value=WETH)
    )
    assert receipt["status"] == 1
    eth_before = devnet.w3.eth.get_balance(beneficiary_address)
    assert (
        mined(devnet, bot, executor.address, executor.encode_abi("sweepEth", [WETH]))["status"] == 1
    )
    assert devnet.w3.eth.get_balance(beneficiary_address) - eth_before == WETH
    assert devnet.w3.eth.get_balance(executor.address) == 0
    # The cold key moves the beneficiary; sweeps follow it.
    new_cold = devnet.user(STRANGER).address
    assert (
        mined(devnet, cold, executor.address, executor.encode_abi("setBeneficiary", [new_cold]))[
            "status"
        ]
        == 1
    )
    got = devnet.balance("WETH", new_cold)
    assert (
        mined(devnet, bot, executor.address, executor.encode_abi("sweep", [weth, 1]))["status"] == 1
    )
    assert devnet.balance("WETH", new_cold) - got == 1


def test_ownership_moves_in_two_steps_and_the_cold_key_can_take_it_back(
    devnet: Devnet, arena: Arena
) -> None:
    executor = devnet.executor
    bot, new, stranger = devnet.bot(), devnet.user(5), devnet.user(STRANGER)
    cold = Sender(devnet.w3, _beneficiary_account(), CHAIN_ID)
    receipt = mined(
        devnet, bot, executor.address, executor.encode_abi("transferOwnership", [new.address])
    )
    assert receipt["status"] == 1
    started = executor.events.OwnershipTransferStarted().process_receipt(receipt)
    assert [(e.args.previousOwner, e.args.newOwner) for e in started] == [
        (bot.address, new.address)
    ]
    assert executor.functions.owner().call() == bot.address  # nothing moved yet
    assert executor.functions.pendingOwner().call() == new.address
    accept = executor.encode_abi("acceptOwnership")
    assert attempt(
        devnet, arena, stranger, executor.address, accept, "NotPendingOwner(address)"
    ) == (stranger.address.lower(),)
    receipt = mined(devnet, new, executor.address, accept)
    assert receipt["status"] == 1
    moved = executor.events.OwnershipTransferred().process_receipt(receipt)
    assert [(e.args.previousOwner, e.args.newOwner) for e in moved] == [(bot.address, new.address)]
    assert executor.functions.owner().call() == new.address
    assert executor.functions.pendingOwner().call() == "0x" + "00" * 20
    # The old key is out: it can neither trade nor sweep.
    weth = devnet.deployment["weth"]
    trade = execute_data(
        devnet, [hop(devnet.pair("A", "WETH", "USDC")["address"], weth, weth)] * 2, 1, 0, False
    )
    assert attempt(devnet, arena, bot, executor.address, trade, "NotTrader(address)") == (
        bot.address.lower(),
    )
    sweep = executor.encode_abi("sweep", [weth, 1])
    assert attempt(
        devnet, arena, bot, executor.address, sweep, "NotOwnerOrBeneficiary(address)"
    ) == (bot.address.lower(),)
    # The hot key is stolen: the cold beneficiary hands the contract to a recovery key.
    recovery = devnet.user(6)
    assert (
        mined(
            devnet,
            cold,
            executor.address,
            executor.encode_abi("transferOwnership", [recovery.address]),
        )["status"]
        == 1
    )
    assert mined(devnet, recovery, executor.address, accept)["status"] == 1
    assert executor.functions.owner().call() == recovery.address


def test_storage_commit_build_trades_and_refuses_forged_callbacks(
    devnet: Devnet, arena: Arena
) -> None:
    """The build for chains without TSTORE: same flash trade, same refusals, slot left zero."""
    deployer = Sender(devnet.w3, _deployer_account(), CHAIN_ID)
    dexes = [
        (d["factory"], bytes.fromhex(d["init_code_hash"][2:])) for d in devnet.deployment["dexes"]
    ]
    bot = devnet.bot()
    beneficiary = devnet.deployment["executor"]["beneficiary"]
    legacy = deploy(devnet, deployer, "ExecutorStorageCommit", [bot.address, beneficiary, dexes])
    data, profit = profitable_trade(devnet)  # a gap: WETH cheap on B's WETH/USDC pair
    assert mined(devnet, bot, legacy.address, data)["status"] == 1
    assert devnet.balance("WETH", legacy.address) == profit
    # Every storage slot the commitment could use is zero again (one use).
    # Slots: owner 0, pendingOwner 1, beneficiary 2, factories 3, V3 factories 4, owner epoch 5,
    # traders 6, commitment 7.
    assert devnet.w3.eth.get_storage_at(legacy.address, 3) == (2).to_bytes(32, "big")
    assert devnet.w3.eth.get_storage_at(legacy.address, 7) == b"\x00" * 32
    forged = legacy.encode_abi("uniswapV2Call", [legacy.address, 0, WETH, b"\x01"])
    args = custom_error(
        devnet.revert_data(bot.address, legacy.address, forged), "UnexpectedCallback(address)"
    )
    assert args == (bot.address.lower(),)


def _beneficiary_account() -> Any:
    from mev_ops.devnet.deploy import BENEFICIARY_INDEX, devnet_account

    return devnet_account(BENEFICIARY_INDEX)


def _deployer_account() -> Any:
    from mev_ops.devnet.deploy import devnet_account

    return devnet_account(0)
