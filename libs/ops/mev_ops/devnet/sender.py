"""Signing and sending for one devnet account with a local nonce and fixed fees.

Deploy and flow send hundreds of transactions: holding the nonce locally and giving every field
explicitly (no eth_estimateGas, no fee lookup per tx) keeps them fast and the signed bytes a pure
function of the inputs, which is what makes a seeded flow reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import rlp
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

from mev_ops.devnet.artifacts import Artifact

GWEI = 10**9


class TxFailed(RuntimeError):
    """A transaction the devnet needed was mined but reverted, or never mined."""


def rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    """A raw JSON-RPC call: anvil's evm_*/txpool_* methods are not in web3's typed API."""
    return w3.provider.make_request(RPCEndpoint(method), params)


def endpoint_uri(w3: Web3) -> str:
    """The node's HTTP URL, for JSON-RPC batches web3 does not send."""
    if not isinstance(w3.provider, HTTPProvider):
        raise TypeError(f"the devnet is reached over HTTP, not {type(w3.provider).__name__}")
    return str(w3.provider.endpoint_uri)


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

    def unsigned(
        self, to: str | None, data: bytes | str, gas: int, value: int = 0
    ) -> dict[str, Any]:
        """The next transaction (consumes a nonce) for the node to sign: see `send_bulk`."""
        tx: dict[str, Any] = {
            "from": self.address, "nonce": hex(self.nonce), "gas": hex(gas),
            "maxFeePerGas": hex(self.max_fee), "maxPriorityFeePerGas": hex(self.tip),
            "value": hex(value), "data": HexBytes(data).to_0x_hex(),
        }  # fmt: skip
        if to is not None:
            tx["to"] = to
        self.nonce += 1
        return tx

    def unsigned_deploy(
        self, artifact: Artifact, args: Sequence[Any] = (), gas: int = 6_000_000
    ) -> tuple[dict[str, Any], ChecksumAddress]:
        """A contract creation for `send_bulk`, and the address it will have."""
        address = create_address(self.address, self.nonce)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        return self.unsigned(None, factory.constructor(*args).data_in_transaction, gas), address

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


BULK_BLOCK_GAS = 10**10  # room for every bulk transaction in one block


def send_bulk(w3: Web3, txs: list[dict[str, Any]]) -> int:
    """Have anvil sign and mine `txs` (from its unlocked dev accounts) in one JSON-RPC batch and
    as few blocks as it takes; raise TxFailed unless every one is mined with status 1.

    Why: hundreds of deploy transactions one by one cost ~10 ms each to sign in pure Python plus
    a block each; here the node signs, one block holds them all, and receipts come per block.
    Returns the number of the last block mined. Automine is left on.
    """
    gas_limit = int(w3.eth.get_block("latest")["gasLimit"])
    first = int(w3.eth.block_number) + 1
    rpc(w3, "evm_setAutomine", [False])
    # anvil drops what does not fit the block it mines, so the block must hold them all
    rpc(w3, "evm_setBlockGasLimit", [hex(BULK_BLOCK_GAS)])
    try:
        body = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_sendTransaction", "params": [tx]}
            for i, tx in enumerate(txs)
        ]
        replies = httpx.post(endpoint_uri(w3), json=body, timeout=120).json()
        refused = [r for r in replies if "error" in r]
        if refused:
            raise TxFailed(f"the node refused {len(refused)} bulk transactions: {refused[0]}")
        hashes = {r["result"] for r in replies}
        for _ in range(100):
            status = rpc(w3, "txpool_status", [])["result"]
            if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
                break
            rpc(w3, "evm_mine", [])
    finally:
        rpc(w3, "evm_setBlockGasLimit", [hex(gas_limit)])
        rpc(w3, "evm_setAutomine", [True])
    last = int(w3.eth.block_number)
    for number in range(first, last + 1):
        for receipt in rpc(w3, "eth_getBlockReceipts", [hex(number)])["result"]:
            if receipt["transactionHash"] in hashes:
                hashes.discard(receipt["transactionHash"])
                if int(receipt["status"], 16) != 1:
                    raise TxFailed(f"bulk transaction {receipt['transactionHash']} reverted")
    if hashes:
        raise TxFailed(f"{len(hashes)} bulk transactions were never mined")
    return last


def call_batch(w3: Web3, calls: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """`eth_call` of each (to, calldata) at latest in one JSON-RPC batch: the deploy's checks
    read ~100 values, one round trip each through web3 cost seconds on a busy host. A call
    that errors raises TxFailed."""
    body = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_call",
         "params": [{"to": to, "data": "0x" + data.hex()}, "latest"]}
        for i, (to, data) in enumerate(calls)
    ]  # fmt: skip
    replies = {r["id"]: r for r in httpx.post(endpoint_uri(w3), json=body, timeout=60).json()}
    out = []
    for i, (to, _) in enumerate(calls):
        reply = replies.get(i, {})
        if "result" not in reply:
            raise TxFailed(f"eth_call to {to} failed: {reply.get('error')}")
        out.append(bytes.fromhex(reply["result"][2:]))
    return out
