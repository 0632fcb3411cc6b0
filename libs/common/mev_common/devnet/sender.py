"""Signing and sending for one devnet account with a local nonce and fixed fees.

Deploy and flow send hundreds of transactions: holding the nonce locally and giving every field
explicitly (no eth_estimateGas, no fee lookup per tx) keeps them fast and the signed bytes a pure
function of the inputs, which is what makes a seeded flow reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import rlp
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3

from mev_common.devnet.artifacts import Artifact

GWEI = 10**9


class TxFailed(RuntimeError):
    """A transaction the devnet needed was mined but reverted, or never mined."""


def create_address(sender: str, nonce: int) -> ChecksumAddress:
    """The address CREATE gives a contract deployed by `sender` at `nonce`."""
    raw = keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:]
    return to_checksum_address(raw)


class Sender:
    """One account's transactions: explicit nonce, gas, fees; signed here, sent raw."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        chain_id: int,
        *,
        nonce: int | None = None,
        max_fee: int = 100 * GWEI,
        tip: int = 1 * GWEI,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self.nonce = self.chain_nonce() if nonce is None else nonce
        self.max_fee = max_fee
        self.tip = tip

    def chain_nonce(self) -> int:
        """Next nonce counting the node's pending transactions (a restarted flow follows them)."""
        return int(self.w3.eth.get_transaction_count(self.account.address, "pending"))

    @property
    def address(self) -> ChecksumAddress:
        return self.account.address

    def sign(
        self,
        to: str | None,
        data: bytes | str,
        gas: int,
        value: int = 0,
        tip: int | None = None,
        max_fee: int | None = None,
    ) -> HexBytes:
        """Sign the next transaction (consumes a nonce) and return its raw bytes."""
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": self.nonce,
            "gas": gas,
            "maxFeePerGas": self.max_fee if max_fee is None else max_fee,
            "maxPriorityFeePerGas": self.tip if tip is None else tip,
            "value": value,
            "data": HexBytes(data),
        }
        if to is not None:
            tx["to"] = to
        signed = self.account.sign_transaction(tx)
        self.nonce += 1
        return HexBytes(signed.raw_transaction)

    def send(
        self,
        to: str | None,
        data: bytes | str,
        gas: int,
        value: int = 0,
        tip: int | None = None,
        max_fee: int | None = None,
    ) -> HexBytes:
        """Sign and send; returns the tx hash without waiting for it to be mined."""
        raw = self.sign(to, data, gas, value, tip, max_fee)
        return HexBytes(self.w3.eth.send_raw_transaction(raw))

    def deploy(
        self, artifact: Artifact, args: Sequence[Any] = (), gas: int = 6_000_000
    ) -> tuple[HexBytes, ChecksumAddress]:
        """Send a contract creation; returns (tx hash, the address it will have)."""
        address = create_address(self.address, self.nonce)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        return self.send(None, factory.constructor(*args).data_in_transaction, gas), address


def wait_all(w3: Web3, hashes: Iterable[HexBytes], timeout: float = 30.0) -> list[Any]:
    """Receipts of `hashes`, in order; raises TxFailed if any reverted."""
    receipts = [
        w3.eth.wait_for_transaction_receipt(h, timeout=timeout, poll_latency=0.02) for h in hashes
    ]
    for receipt in receipts:
        if receipt["status"] != 1:
            raise TxFailed(f"transaction {receipt['transactionHash'].hex()} reverted")
    return receipts
