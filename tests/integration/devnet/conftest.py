"""One real anvil per test module (random free port, temp dir) holding the devnet deployment
(tests/support/devnet_state.py: deployed once a session, loaded from its state dump after).

The node automines (each transaction its own block) so tests take milliseconds per tx;
`chain_snapshot` reverts the chain after each test that changes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector
from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.keys import load_or_create_key
from mev_ops.devnet.sender import Sender
from web3 import Web3

from tests.support.devnet_state import deployed_anvil

CHAIN_ID = 31337
SEED = 1
DEADLINE = 2**40


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Uniswap V2 getAmountOut, written independently of the contract under test."""
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


@dataclass
class Devnet:
    node: AnvilNode
    w3: Web3
    deployment: dict[str, Any]
    key_path: Path
    deployment_path: Path

    @property
    def executor(self) -> Any:
        address = self.deployment["executor"]["address"]
        return self.w3.eth.contract(address=address, abi=load_artifact("Executor").abi)

    def token(self, symbol: str) -> Any:
        address = self.deployment["tokens"][symbol]["address"]
        return self.w3.eth.contract(address=address, abi=load_artifact("DevToken").abi)

    def router(self, dex: str) -> Any:
        info = next(d for d in self.deployment["dexes"] if d["name"] == dex)
        return self.w3.eth.contract(
            address=info["router"], abi=load_artifact("UniswapV2Router02").abi
        )

    def pair(self, dex: str, a: str, b: str) -> dict[str, Any]:
        return next(
            p
            for p in self.deployment["pairs"]
            if p["dex"] == dex and {p["symbol0"], p["symbol1"]} == {a, b}
        )

    def reserves(self, pair: dict[str, Any], symbol_in: str) -> tuple[int, int]:
        """(reserve of symbol_in, reserve of the other token) of `pair`."""
        contract = self.w3.eth.contract(
            address=pair["address"], abi=load_artifact("UniswapV2Pair").abi
        )
        r0, r1, _ = contract.functions.getReserves().call()
        return (r0, r1) if pair["symbol0"] == symbol_in else (r1, r0)

    def expected_out(self, legs: list[tuple[str, str, str]], amount_in: int) -> int:
        """Output of swapping through legs of (dex, token in, token out), by the test's own math."""
        amount = amount_in
        for dex, a, b in legs:
            amount = amount_out(amount, *self.reserves(self.pair(dex, a, b), a))
        return amount

    def balance(self, symbol: str, owner: str) -> int:
        return int(self.token(symbol).functions.balanceOf(owner).call())

    def bot(self) -> Sender:
        return Sender(self.w3, load_or_create_key(self.key_path), CHAIN_ID)

    def user(self, index: int) -> Sender:
        return Sender(self.w3, devnet_account(index), CHAIN_ID)

    def revert_data(self, sender: str, to: str, data: str) -> bytes:
        """The revert payload of calling `to` with `data` from `sender` (fails if it succeeds)."""
        reply = self.w3.provider.make_request(
            "eth_call", [{"from": sender, "to": to, "data": data}, "latest"]
        )  # type: ignore[arg-type]
        assert "error" in reply, f"call succeeded: {reply}"
        return bytes.fromhex(reply["error"]["data"].removeprefix("0x"))

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.w3.provider.make_request(method, params)["result"]  # type: ignore[arg-type]


def custom_error(data: bytes, signature: str) -> tuple[Any, ...]:
    """Decode revert `data` as the custom error `signature`, asserting it is that error."""
    assert data[:4] == function_signature_to_4byte_selector(signature), data.hex()
    types = signature[signature.index("(") + 1 : -1].split(",") if "()" not in signature else []
    return tuple(decode(types, data[4:]))


@contextlib.contextmanager
def devnet_at(base: Path, key_path: Path | None = None) -> Iterator[Devnet]:
    """A deployed devnet of its own under `base`, stopped on exit (a module's fixture)."""
    key_path, out = key_path or base / "bot.key", base / "deployment.json"
    node, deployment = deployed_anvil(base, CHAIN_ID, SEED, key_path, out)
    try:
        yield Devnet(node, Web3(Web3.HTTPProvider(node.rpc_url)), deployment, key_path, out)
    finally:
        node.stop()


@contextlib.contextmanager
def reverted_after(devnet: Devnet) -> Iterator[Devnet]:
    """`devnet` back at its state of now on exit: each test starts from the deployed state."""
    snapshot = devnet.rpc("evm_snapshot", [])
    yield devnet
    assert devnet.rpc("evm_revert", [snapshot]) is True


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    data_dir = tmp_path_factory.mktemp("devnet")
    with devnet_at(data_dir, data_dir / "keys/devnet.key") as world:
        yield world


@pytest.fixture
def chain_snapshot(devnet: Devnet) -> Iterator[None]:
    with reverted_after(devnet):
        yield
