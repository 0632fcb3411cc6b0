"""Attacks on the Executor (issue 11), on a real anvil with the real Uniswap V2 bytecode, our
Executor and attack contracts (contracts/test/Attackers.sol) built by the same pinned solc.

The threat: whatever reaches the bus gets signed by the bot key, so the attacker chooses the
route, amounts and flash flag of an owner-sent `execute`, and can deploy any contract. Each attack
must revert and leave the executor's balances (every token involved and ETH) unchanged to the
wei. Before issue 11 the malicious-pair drain (`test_malicious_pair_posing_as_a_pair...`)
succeeded: the old executor trusted any `uniswapV2Call` from the pair it was flash-swapping,
forwarded the amount that pair claimed to have lent (all 10 WETH) to the attacker's "pair", and
its profit check read the attacker's token, whose balanceOf rises as our WETH falls: the
transaction succeeded and the executor's 10 WETH went to the attacker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from eth_abi import encode
from eth_utils import keccak
from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import pair_address
from mev_ops.devnet.sender import Sender

from tests.integration.devnet import conftest as devnet_conftest
from tests.integration.devnet.conftest import Devnet, amount_out, custom_error

# The devnet suite's fixtures: one real anvil per module, deployed from nothing; each test
# reverts to a snapshot taken after the module's attack contracts are deployed.
devnet = devnet_conftest.devnet
chain_snapshot = devnet_conftest.chain_snapshot

pytestmark = pytest.mark.usefixtures("chain_snapshot")

WETH = 10**18
GAS = 1_500_000
PAIR_GAS = 5_000_000  # a V2 pair creation
ATTACKER = 8  # devnet account index of the attacker (a funded EOA)
STRANGER = 7
HOP_TYPES = "(address,address,address,uint256)[]"


@dataclass
class Arena:
    """The attacker's contracts, deployed once per module before any snapshot."""

    devnet: Devnet
    pair: Any  # AttackerPair at a plain CREATE address (no factory)
    mirror: Any  # AttackerToken whose balanceOf(executor) mirrors our WETH loss
    hook_token: Any  # AttackerToken with real balances and a re-entry hook
    factories: tuple[Any, Any]  # AttackerFactory x2 (CREATE2 pairs, never allowlisted by us)

    @property
    def attacker(self) -> Sender:
        """A fresh sender each time: its nonce follows the chain across snapshot reverts."""
        return self.devnet.user(ATTACKER)

    def extra_tokens(self) -> tuple[tuple[str, Any], ...]:
        return (("mirror", self.mirror), ("hook", self.hook_token))


class TokenHolder(Protocol):
    """An arena whose attacker tokens `holdings` counts too."""

    def extra_tokens(self) -> tuple[tuple[str, Any], ...]: ...


def contract(devnet: Devnet, name: str, address: str) -> Any:
    return devnet.w3.eth.contract(address=address, abi=load_artifact(name).abi)


def mined(devnet: Devnet, sender: Sender, to: str | None, data: Any, gas: int = GAS) -> Any:
    return devnet.w3.eth.wait_for_transaction_receipt(sender.send(to, data, gas))


def deploy(devnet: Devnet, sender: Sender, name: str, args: list[Any] | None = None) -> Any:
    tx, address = sender.deploy(load_artifact(name), args or [], 6_000_000)
    assert devnet.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    return contract(devnet, name, address)


@pytest.fixture(scope="module")
def arena(devnet: Devnet) -> Arena:
    attacker = devnet.user(ATTACKER)
    pair = deploy(devnet, attacker, "AttackerPair")
    mirror = deploy(devnet, attacker, "AttackerToken")
    hook_token = deploy(devnet, attacker, "AttackerToken")
    factories = (
        deploy(devnet, attacker, "AttackerFactory"),
        deploy(devnet, attacker, "AttackerFactory"),
    )
    executor = devnet.executor.address
    setup = mirror.encode_abi("setUp", [devnet.deployment["weth"], executor])
    assert mined(devnet, attacker, mirror.address, setup)["status"] == 1
    return Arena(devnet, pair, mirror, hook_token, factories)


def holdings(devnet: Devnet, arena: TokenHolder, address: str) -> dict[str, int]:
    """Every token the attacks touch (all devnet tokens, the attacker's) and ETH, in wei."""
    out = {s: devnet.balance(s, address) for s in devnet.deployment["tokens"]}
    for name, token in arena.extra_tokens():
        out[name] = int(token.functions.balanceOf(address).call())
    out["ETH"] = int(devnet.w3.eth.get_balance(address))
    return out


def hop(pair: str, token_in: str, token_out: str, fee: int = 30) -> tuple[str, str, str, int]:
    return (pair, token_in, token_out, fee)


def execute_data(devnet: Devnet, hops: list[Any], amount: int, min_profit: int, flash: bool) -> Any:
    return devnet.executor.encode_abi("execute", [hops, amount, min_profit, flash])


def attempt(
    devnet: Devnet, arena: TokenHolder, sender: Sender, to: str, data: Any, error: str
) -> Any:
    """eth_call names the revert; the same bytes mined revert; the executor keeps every wei.
    Returns the decoded error arguments."""
    executor = devnet.executor.address
    before = holdings(devnet, arena, executor)
    args = custom_error(devnet.revert_data(sender.address, to, data), error)
    assert mined(devnet, sender, to, data)["status"] == 0
    assert holdings(devnet, arena, executor) == before
    return args


def sorted_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if int(a, 16) < int(b, 16) else (b, a)


def test_malicious_pair_posing_as_a_pair_cannot_drain(devnet: Devnet, arena: Arena) -> None:
    """The old executor lost its 10 WETH to exactly this bundle (module docstring)."""
    weth, executor = devnet.deployment["weth"], devnet.executor.address
    balance = devnet.balance("WETH", executor)
    assert balance == 10 * WETH
    setup = arena.pair.encode_abi("setUp", [10**30, 10**30, 0, balance])  # mode 0: lie
    assert mined(devnet, arena.attacker, arena.pair.address, setup)["status"] == 1
    fake = arena.pair.address
    hops = [hop(fake, arena.mirror.address, weth), hop(fake, weth, arena.mirror.address)]
    for flash in (True, False):
        data = execute_data(devnet, hops, 1, 0, flash)
        args = attempt(devnet, arena, devnet.bot(), executor, data, "PairNotAllowed(address)")
        assert args == (fake.lower(),)
    assert devnet.balance("WETH", fake) == 0


@pytest.mark.parametrize("from_contract", [False, True], ids=["eoa", "contract"])
def test_forged_callback_is_refused(devnet: Devnet, arena: Arena, from_contract: bool) -> None:
    """A callback nobody asked for, naming the executor as sender, with well-formed data that
    would forward all its WETH into an attacker pair."""
    weth, executor = devnet.deployment["weth"], devnet.executor.address
    hops = [hop(arena.pair.address, weth, arena.mirror.address)] * 2
    data = encode([HOP_TYPES, "uint256", "uint256"], [hops, 0, 0])
    stranger = devnet.user(STRANGER)
    callback = devnet.executor.encode_abi("uniswapV2Call", [executor, 0, 10 * WETH, data])
    if from_contract:
        forged = arena.pair.encode_abi("forge", [executor, executor, 0, 10 * WETH, data])
        args = attempt(
            devnet, arena, stranger, arena.pair.address, forged, "UnexpectedCallback(address)"
        )
        assert args == (arena.pair.address.lower(),)
    else:
        args = attempt(devnet, arena, stranger, executor, callback, "UnexpectedCallback(address)")
        assert args == (stranger.address.lower(),)
    # Not even the owner's own key may call it outside a flash swap.
    bot = devnet.bot()
    assert attempt(devnet, arena, bot, executor, callback, "UnexpectedCallback(address)") == (
        bot.address.lower(),
    )


def test_real_pair_flash_swap_naming_the_executor_is_refused(devnet: Devnet, arena: Arena) -> None:
    """Someone flash-swaps a genuine pair with the executor as recipient, hoping it repays."""
    pair = devnet.pair("A", "WETH", "USDC")["address"]
    pair_c = contract(devnet, "UniswapV2Pair", pair)
    swap = pair_c.encode_abi("swap", [1, 0, devnet.executor.address, b"\x01"])
    stranger = devnet.user(STRANGER)
    assert attempt(devnet, arena, stranger, pair, swap, "UnexpectedCallback(address)") == (
        pair.lower(),
    )


def make_real_pair(
    devnet: Devnet, arena: Arena, factory: str, token: Any, atk: int, weth: int
) -> str:
    """The attacker makes a genuine npm V2 pair token/WETH on `factory` with its own liquidity."""
    attacker, w3 = arena.attacker, devnet.w3
    weth_address = devnet.deployment["weth"]
    factory_c = contract(devnet, "UniswapV2Factory", factory)
    create = factory_c.encode_abi("createPair", [token.address, weth_address])
    assert mined(devnet, attacker, factory, create, PAIR_GAS)["status"] == 1
    pair = factory_c.functions.getPair(token.address, weth_address).call()
    weth_c = contract(devnet, "WETH9", weth_address)
    steps = [
        (token.address, token.encode_abi("mint", [pair, atk]), 0),
        (weth_address, weth_c.encode_abi("deposit"), weth),
        (weth_address, weth_c.encode_abi("transfer", [pair, weth]), 0),
        (pair, contract(devnet, "UniswapV2Pair", pair).encode_abi("mint", [attacker.address]), 0),
    ]
    for to, data, value in steps:
        receipt = w3.eth.wait_for_transaction_receipt(attacker.send(to, data, 500_000, value=value))
        assert receipt["status"] == 1
    return pair


@pytest.fixture
def hook_route(chain_snapshot: None, devnet: Devnet, arena: Arena) -> tuple[list[Any], int, int]:
    """A profitable cycle WETH -> ATK (pair on B) -> WETH (pair on A) through genuine pairs of
    both allowlisted factories, ATK being the attacker's token. Returns (hops, amountIn, profit)."""
    factories = {d["name"]: d["factory"] for d in devnet.deployment["dexes"]}
    token = arena.hook_token
    on_a = make_real_pair(devnet, arena, factories["A"], token, 100 * WETH, 10 * WETH)
    on_b = make_real_pair(devnet, arena, factories["B"], token, 120 * WETH, 10 * WETH)
    weth = devnet.deployment["weth"]
    hops = [hop(on_b, weth, token.address), hop(on_a, token.address, weth)]
    amount = WETH // 2
    mid = amount_out(amount, 10 * WETH, 120 * WETH)
    profit = amount_out(mid, 100 * WETH, 10 * WETH) - amount
    assert profit > 0
    return hops, amount, profit


@pytest.mark.parametrize("flash", [False, True], ids=["own-balance", "flash"])
def test_attacker_token_in_the_route_cannot_reenter(
    devnet: Devnet, arena: Arena, hook_route: tuple[list[Any], int, int], flash: bool
) -> None:
    """The attacker's token, moved by genuine allowlisted pairs, calls the executor back from
    inside the route: the exact callback the pair would make (same amounts, same data), and
    `execute` itself. The executor refuses each by name (recorded by the token when it carries
    on: the trade then pays exactly its own profit, the attacker gets nothing); when the token
    bubbles the refusal, the trade reverts and the executor keeps every wei."""
    hops, amount, profit = hook_route
    executor, token = devnet.executor.address, arena.hook_token
    data = execute_data(devnet, hops, amount, 0, flash)
    first_out = amount_out(amount, 10 * WETH, 120 * WETH)
    weth = devnet.deployment["weth"]
    outs = (0, first_out) if int(weth, 16) < int(token.address, 16) else (first_out, 0)
    exact = encode([HOP_TYPES, "uint256", "uint256"], [hops, amount, 0])
    callback = devnet.executor.encode_abi("uniswapV2Call", [executor, *outs, exact])
    for payload, error in ((callback, "UnexpectedCallback(address)"), (data, "NotTrader(address)")):
        snapshot = devnet.rpc("evm_snapshot", [])
        arm = token.encode_abi("setHook", [executor, payload, False])
        assert mined(devnet, arena.attacker, token.address, arm)["status"] == 1
        before = holdings(devnet, arena, executor)
        assert mined(devnet, devnet.bot(), executor, data)["status"] == 1
        recorded = bytes(token.functions.lastRevert().call())
        assert custom_error(recorded, error) == (token.address.lower(),)
        after = holdings(devnet, arena, executor)
        # (the mirror token reads as 1e30 minus our WETH)
        gained = {"WETH": before["WETH"] + profit, "mirror": before["mirror"] - profit}
        assert after == {**before, **gained}
        assert devnet.rpc("evm_revert", [snapshot]) is True

        arm = token.encode_abi("setHook", [executor, payload, True])
        assert mined(devnet, arena.attacker, token.address, arm)["status"] == 1
        # The V2 pair wraps a failing token transfer in its own message.
        reason = attempt(devnet, arena, devnet.bot(), executor, data, "Error(string)")
        assert reason == ("UniswapV2: TRANSFER_FAILED",)


def allow_attacker_factories(devnet: Devnet, arena: Arena, token: str) -> tuple[str, str]:
    """The owner allowlists both attacker factories (by mistake, or a thief with the owner key);
    returns a pair of each for (token, WETH): the pair check passes, the callback checks are
    what is left."""
    weth = devnet.deployment["weth"]
    pairs = []
    for factory in arena.factories:
        code_hash = factory.functions.initCodeHash().call()
        allow = devnet.executor.encode_abi("setFactory", [factory.address, code_hash, True])
        assert mined(devnet, devnet.bot(), devnet.executor.address, allow)["status"] == 1
        create = factory.encode_abi("createPair", [weth, token])
        assert mined(devnet, arena.attacker, factory.address, create, PAIR_GAS)["status"] == 1
        pairs.append(pair_address(factory.address, weth, token, code_hash))
    return pairs[0], pairs[1]


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        (0, "UnexpectedCallback(address)"),
        (1, "UnexpectedCallback(address)"),
        (2, "NotTrader(address)"),
    ],
    ids=["lies-about-the-loan", "calls-back-twice", "reenters-execute"],
)
def test_pair_of_a_wrongly_allowlisted_factory_cannot_misuse_the_callback(
    devnet: Devnet, arena: Arena, mode: int, error: str
) -> None:
    """Even past the pair check: a pair that claims another loan amount than the one committed,
    calls back a second time (the commitment is one use), or re-enters `execute`, reverts."""
    weth, token = devnet.deployment["weth"], arena.hook_token.address
    first, second = allow_attacker_factories(devnet, arena, token)
    executor = devnet.executor.address
    # The first pair really lends (its token); the second pays far more WETH than it gets: the
    # first callback completes, so what stops the trade is the second one (mode 1).
    token_first = int(token, 16) < int(weth, 16)
    reserves = {first: (10**30, 10**30), second: (WETH, 10**30) if token_first else (10**30, WETH)}
    for address, (r0, r1) in reserves.items():
        pair = contract(devnet, "AttackerPair", address)
        for call in (pair.encode_abi("setUp", [r0, r1, mode, 10 * WETH]),
                     pair.encode_abi("setLoanToken", [token])):  # fmt: skip
            assert mined(devnet, arena.attacker, address, call)["status"] == 1
    hops = [hop(first, weth, token), hop(second, token, weth)]
    data = execute_data(devnet, hops, WETH, 0, True)
    assert attempt(devnet, arena, devnet.bot(), executor, data, error) == (first.lower(),)


def test_stolen_hot_key_cannot_drain_through_its_own_allowlisted_factory(
    devnet: Devnet, arena: Arena
) -> None:
    """The thief holds the owner key, so it can allowlist its own factory and send any route.
    Its pair calls back with exactly the committed amounts but never lends them; the executor
    would forward 10 WETH of its own and the mirror token would report the "profit". The
    callback checks the loan arrived: `LoanNotReceived`, and every wei stays. (With the
    commitment and allowlist alone this transaction succeeded and moved 9.97 WETH out.)"""
    weth, token = devnet.deployment["weth"], arena.mirror.address
    first, second = allow_attacker_factories(devnet, arena, token)
    executor = devnet.executor.address
    balance = devnet.balance("WETH", executor)
    # Hop 0 "lends" ~all our WETH for as much mirror token; hop 1 "pays" plenty of it back,
    # so only the loan check can stop it.
    mirror_first = int(token, 16) < int(weth, 16)
    paying = (10**30, WETH) if mirror_first else (WETH, 10**30)
    for address, (r0, r1) in ((first, (10**30, 10**30)), (second, paying)):
        pair = contract(devnet, "AttackerPair", address)
        setup = pair.encode_abi("setUp", [r0, r1, 3, 0])  # mode 3: unpaid callback
        assert mined(devnet, arena.attacker, address, setup)["status"] == 1
    hops = [hop(first, token, weth), hop(second, weth, token)]
    amount_in = balance
    borrowed = amount_out(amount_in, 10**30, 10**30)
    assert borrowed > balance * 99 // 100
    data = execute_data(devnet, hops, amount_in, 0, True)
    args = attempt(
        devnet, arena, devnet.bot(), executor, data, "LoanNotReceived(address,uint256,uint256)"
    )
    assert args == (weth.lower(), 0, borrowed)


def test_route_through_a_factory_not_allowlisted_is_refused(devnet: Devnet, arena: Arena) -> None:
    """A genuine npm Uniswap V2 factory the owner never allowlisted: its pair is refused before any
    token moves, though the route would profit; allowlisting it makes the same bytes succeed."""
    attacker = arena.attacker
    factory = deploy(devnet, attacker, "UniswapV2Factory", [attacker.address])
    weth = devnet.deployment["weth"]
    usdc = devnet.deployment["tokens"]["USDC"]["address"]
    # USDC cheap on the new pair: buy it there, sell it on A's pair.
    usdc_c = devnet.token("USDC")
    funder = devnet.user(1)
    amount_usdc = devnet.balance("USDC", funder.address) // 2
    assert (
        mined(devnet, funder, usdc, usdc_c.encode_abi("transfer", [attacker.address, amount_usdc]))[
            "status"
        ]
        == 1
    )
    create = factory.encode_abi("createPair", [usdc, weth])
    assert mined(devnet, attacker, factory.address, create, PAIR_GAS)["status"] == 1
    rogue = factory.functions.getPair(usdc, weth).call()
    weth_c = contract(devnet, "WETH9", weth)
    for to, data, value in (
        (usdc, usdc_c.encode_abi("transfer", [rogue, amount_usdc]), 0),
        (weth, weth_c.encode_abi("deposit"), WETH),
        (weth, weth_c.encode_abi("transfer", [rogue, WETH]), 0),
        (rogue, contract(devnet, "UniswapV2Pair", rogue).encode_abi("mint", [attacker.address]), 0),
    ):
        assert (
            devnet.w3.eth.wait_for_transaction_receipt(
                attacker.send(to, data, 500_000, value=value)
            )["status"]
            == 1
        )
    legit = devnet.pair("A", "WETH", "USDC")["address"]
    hops = [hop(rogue, weth, usdc), hop(legit, usdc, weth)]
    executor = devnet.executor.address
    for flash in (False, True):
        data = execute_data(devnet, hops, WETH // 100, 0, flash)
        assert attempt(devnet, arena, devnet.bot(), executor, data, "PairNotAllowed(address)") == (
            rogue.lower(),
        )

    code_hash = keccak(load_artifact("UniswapV2Pair").bytecode)
    allow = devnet.executor.encode_abi("setFactory", [factory.address, code_hash, True])
    assert mined(devnet, devnet.bot(), executor, allow)["status"] == 1
    before = devnet.balance("WETH", executor)
    receipt = mined(
        devnet, devnet.bot(), executor, execute_data(devnet, hops, WETH // 100, 0, False)
    )
    assert receipt["status"] == 1 and devnet.balance("WETH", executor) > before
