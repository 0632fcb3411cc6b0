"""Attacks on the Executor's V3 side (issue 13), on a real anvil with the real Uniswap V3
bytecode, our Executor and the V3 attack contracts (contracts/test/V3Attackers.sol).

The threat is issue 11's: whatever reaches the bus gets signed by the bot key, so the attacker
picks the route, and may deploy any contract, even a factory the owner allowlists by mistake
(or a thief with the owner key does). `uniswapV3SwapCallback` must pay only the exact input of
the swap in flight, once, to the pool being swapped, and only pools that are CREATE2 pools of an
allowlisted V3 factory are ever called. Each attack reverts and leaves the executor's balances
(every devnet token, the attacker's token, ETH) unchanged to the wei. Before this change the
executor had no V3 callback and read a V3 fee word as an invalid V2 fee: each named error below
was missing (empty revert or InvalidPath).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode
from mev_common.chain.pools import v3_pool_address
from mev_common.executor import ExecHop, encode_execute
from mev_ops.devnet.sender import Sender

from tests.integration.devnet import conftest as devnet_conftest
from tests.integration.devnet.conftest import Devnet
from tests.integration.devnet.v3_routes import Leg, exec_hops
from tests.security.test_executor_attacks import (
    ATTACKER,
    STRANGER,
    attempt,
    contract,
    deploy,
    holdings,
    mined,
)

devnet = devnet_conftest.devnet
chain_snapshot = devnet_conftest.chain_snapshot

pytestmark = pytest.mark.usefixtures("chain_snapshot")

WETH = 10**18
PROFIT = 1_000  # what the attacker's honest pools pay over the input (the control trade)
HONEST, GREEDY, TWICE, UNPAID, RELAY = 4, 0, 1, 2, 3  # AttackerV3Pool modes


@dataclass
class V3Arena:
    devnet: Devnet
    plain: Any  # AttackerV3Pool at a plain CREATE address (no factory)
    factory: Any  # AttackerV3Factory (CREATE2 pools, allowlisted only where a test says so)
    token: Any  # AttackerToken: the attacker mints it freely

    @property
    def attacker(self) -> Sender:
        return self.devnet.user(ATTACKER)

    def extra_tokens(self) -> tuple[tuple[str, Any], ...]:
        return (("attacker token", self.token),)


@pytest.fixture(scope="module")
def arena(devnet: Devnet) -> V3Arena:
    attacker = devnet.user(ATTACKER)
    return V3Arena(
        devnet,
        deploy(devnet, attacker, "AttackerV3Pool"),
        deploy(devnet, attacker, "AttackerV3Factory"),
        deploy(devnet, attacker, "AttackerToken"),
    )


def v3(pool: str, token_in: str, token_out: str, fee_pips: int) -> ExecHop:
    return ExecHop(pool, token_in, token_out, fee_pips // 100, "v3")


@pytest.mark.parametrize("shape", ["pay", "flash"])
def test_forged_v3_callback_outside_a_trade_is_refused(
    devnet: Devnet, arena: V3Arena, shape: str
) -> None:
    """Nothing in flight: an EOA, a contract posing as a pool and even the owner key call the
    callback asking 10 WETH, with a payment's data (tokenIn) or a flash route's."""
    weth, executor = devnet.deployment["weth"], devnet.executor.address
    hops = [(arena.plain.address, weth, weth, (1 << 24) | 3000)] * 2
    data = (
        encode(["address"], [weth])
        if shape == "pay"
        else encode(
            ["(address,address,address,uint256)[]", "uint256", "uint256", "uint256"],
            [hops, 10 * WETH, 0, 0],
        )
    )
    callback = devnet.executor.encode_abi("uniswapV3SwapCallback", [10 * WETH, 0, data])
    error = "UnexpectedV3Callback(address)"
    for sender in (devnet.user(STRANGER), devnet.bot()):
        assert attempt(devnet, arena, sender, executor, callback, error) == (
            sender.address.lower(),
        )
    forged = arena.plain.encode_abi("forge", [executor, 10 * WETH, 0, data])
    stranger = devnet.user(STRANGER)
    assert attempt(devnet, arena, stranger, arena.plain.address, forged, error) == (
        arena.plain.address.lower(),
    )


def test_pools_not_create2_of_an_allowlisted_v3_factory_are_refused(
    devnet: Devnet, arena: V3Arena
) -> None:
    """Before any token moves: a contract posing as a pool; a genuine npm V3 pool of a factory
    nobody allowlisted; a real devnet pool declared with another fee tier, or as a V2 pair;
    and a V2 pair declared as a V3 pool."""
    weth, usdc = devnet.deployment["weth"], devnet.deployment["tokens"]["USDC"]["address"]
    attacker = arena.attacker
    rogue_factory = deploy(devnet, attacker, "UniswapV3Factory")
    create = rogue_factory.encode_abi("createPool", [weth, usdc, 3000])
    assert mined(devnet, attacker, rogue_factory.address, create, 6_000_000)["status"] == 1
    rogue = rogue_factory.functions.getPool(weth, usdc, 3000).call()
    real = exec_hops(devnet, [Leg("A:WETH/USDC:500", "WETH", "USDC")])[0]
    v2_pair = devnet.pair("A", "WETH", "USDC")["address"]
    back = exec_hops(devnet, [Leg("B:WETH/USDC:500", "USDC", "WETH")])[0]
    cases = [
        (v3(arena.plain.address, weth, usdc, 3000), arena.plain.address),
        (v3(rogue, weth, usdc, 3000), rogue),
        (v3(real.pair, weth, usdc, 3000), real.pair),  # really the 500-pip pool
        (ExecHop(real.pair, weth, usdc, 30), real.pair),  # a V3 pool is no V2 pair
        (v3(v2_pair, weth, usdc, 500), v2_pair),  # nor a V2 pair a V3 pool
    ]
    for first, refused in cases:
        for flash in (False, True):
            data = encode_execute([first, back], WETH // 100, 0, flash)
            args = attempt(
                devnet, arena, devnet.bot(), devnet.executor.address, data,
                "PairNotAllowed(address)",
            )  # fmt: skip
            assert args == (refused.lower(),)


def test_a_stranger_cannot_execute_a_v3_route(devnet: Devnet, arena: V3Arena) -> None:
    legs = [Leg("A:WETH/USDC:500", "WETH", "USDC"), Leg("B:WETH/USDC:500", "USDC", "WETH")]
    stranger = devnet.user(STRANGER)
    for flash in (False, True):
        data = encode_execute(exec_hops(devnet, legs), WETH, 0, flash)
        args = attempt(devnet, arena, stranger, devnet.executor.address, data, "NotTrader(address)")
        assert args == (stranger.address.lower(),)


def rigged_route(devnet: Devnet, arena: V3Arena, mode: int) -> tuple[list[ExecHop], int]:
    """The owner allowlists the attacker's V3 factory; its two CREATE2 pools make the cycle
    WETH -> attacker token (pool 0, in `mode`) -> WETH (pool 1, honest, pays PROFIT over the
    input). Returns (hops, amountIn)."""
    weth, token = devnet.deployment["weth"], arena.token.address
    executor, attacker = devnet.executor, arena.attacker
    code_hash = arena.factory.functions.initCodeHash().call()
    allow = executor.encode_abi("setV3Factory", [arena.factory.address, code_hash, True])
    assert mined(devnet, devnet.bot(), executor.address, allow)["status"] == 1
    pools = []
    for fee in (3000, 500):
        create = arena.factory.encode_abi("createPool", [weth, token, fee])
        assert mined(devnet, attacker, arena.factory.address, create, 1_000_000)["status"] == 1
        pools.append(v3_pool_address(arena.factory.address, weth, token, fee, code_hash))
    assert len(set(pools)) == 2
    amount = WETH
    weth_c = contract(devnet, "WETH9", weth)
    for to, data, value in (
        (token, arena.token.encode_abi("mint", [pools[0], 10**30]), 0),
        (weth, weth_c.encode_abi("deposit"), 2 * amount),
        (weth, weth_c.encode_abi("transfer", [pools[1], 2 * amount]), 0),
    ):
        receipt = devnet.w3.eth.wait_for_transaction_receipt(
            attacker.send(to, data, 200_000, value=value)
        )
        assert receipt["status"] == 1
    setups = [
        (pools[0], [mode, 5 * amount, 1, token, arena.plain.address]),
        (pools[1], [HONEST, amount + PROFIT, 0, weth, "0x" + "00" * 20]),
    ]
    for address, args in setups:
        setup = contract(devnet, "AttackerV3Pool", address).encode_abi("setUp", args)
        assert mined(devnet, attacker, address, setup)["status"] == 1
    return [v3(pools[0], weth, token, 3000), v3(pools[1], token, weth, 500)], amount


@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
def test_honest_attacker_pools_trade_exactly_the_control(
    devnet: Devnet, arena: V3Arena, flash: bool
) -> None:
    """The control for the next test: the same rigged route with both pools honest succeeds,
    paying each pool exactly its input (so what stops the attacks below is the checks)."""
    hops, amount = rigged_route(devnet, arena, HONEST)
    executor = devnet.executor.address
    before = holdings(devnet, arena, executor)
    data = encode_execute(hops, amount, PROFIT, flash)
    assert mined(devnet, devnet.bot(), executor, data)["status"] == 1
    assert holdings(devnet, arena, executor) == {**before, "WETH": before["WETH"] + PROFIT}
    # each pool was paid exactly its input: pool 0 the WETH, pool 1 all of pool 0's output
    assert devnet.balance("WETH", hops[0].pair) == amount
    assert arena.token.functions.balanceOf(hops[1].pair).call() == 5 * amount


@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
@pytest.mark.parametrize(
    ("mode", "error", "culprit"),
    [
        (GREEDY, "UnexpectedV3Callback(address)", "pool"),
        (TWICE, "UnexpectedV3Callback(address)", "pool"),
        (RELAY, "UnexpectedV3Callback(address)", "relay"),
        (UNPAID, "LoanNotReceived(address,uint256,uint256)", "token"),
    ],
    ids=["asks-one-wei-more", "calls-back-twice", "callback-from-another-contract", "never-pays"],
)
def test_a_pool_of_a_wrongly_allowlisted_v3_factory_cannot_misuse_the_callback(
    devnet: Devnet, arena: V3Arena, mode: int, error: str, culprit: str, flash: bool
) -> None:
    """Past the pool check: a pool asking one wei more than the committed input, calling back a
    second time (one use), having a plain contract (no CREATE2 pool) send the exact callback
    while its swap is in flight, or reporting an output it never sent: each reverts."""
    hops, amount = rigged_route(devnet, arena, mode)
    data = encode_execute(hops, amount, 0, flash)
    args = attempt(devnet, arena, devnet.bot(), devnet.executor.address, data, error)
    expected = {
        "pool": (hops[0].pair.lower(),),
        "relay": (arena.plain.address.lower(),),
        "token": (arena.token.address.lower(), 0, 5 * amount),
    }
    assert args == expected[culprit]
