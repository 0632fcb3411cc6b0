"""An in-memory chain behind the submitter's ChainPort: a head, our nonces, a tx pool, receipts.

Only what submit asks of a node; raw txs are decoded with eth-account so tests assert what was
really signed (nonce, fees, recipient)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from mev_common.chain.jsonrpc import RpcError

from services.submit.sender import SendResult, Verdict


def block_hash(number: int) -> str:
    """The fake chain's hash of block `number` (stable, so a bundle can name its block)."""
    return "0x" + keccak(f"fake block {number}".encode()).hex()


@dataclass
class FakeChain:
    head: int = 100
    base_fee: int = 10**9
    owner: str = ""
    mined_nonce: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # every decoded broadcast
    pool: dict[str, dict[str, Any]] = field(default_factory=dict)  # hash -> tx, unmined
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    eth_calls: list[dict[str, Any]] = field(default_factory=list)  # every eth_call's tx object
    call_reverts: bool = False  # eth_call answers as a node does a revert (code 3)
    before_call: Callable[[], None] | None = None  # runs as an eth_call arrives (a race)
    hold: asyncio.Event | None = None  # set: a broadcast is answered only once it is set
    refuse: int = 0  # the next `refuse` broadcasts are refused by every node (REJECTED)
    count_hold: asyncio.Event | None = None  # set: a nonce count, read at once, is answered
    answered: list[str] = field(default_factory=list)  # tx hashes, in the order answered

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        p = params or []
        if method == "eth_getBlockByNumber":
            number = self.head if p[0] == "latest" else int(p[0], 16)
            if number > self.head:
                return None
            return {
                "number": hex(number),
                "hash": block_hash(number),
                "baseFeePerGas": hex(self.base_fee),
                "gasUsed": hex(15_000_000),
                "gasLimit": hex(30_000_000),
            }
        if method == "eth_getTransactionCount":
            count = self.mined_nonce + (len(self._pending_nonces()) if p[1] == "pending" else 0)
            if self.count_hold is not None:  # read now, answered later (a slow node)
                await self.count_hold.wait()
            return hex(count)
        if method == "eth_blockNumber":
            return hex(self.head)
        if method == "eth_getTransactionReceipt":
            return self.receipts.get(p[0])
        if method == "eth_getTransactionByHash":
            return self.pool.get(p[0])
        if method == "eth_call":
            self.eth_calls.append(p[0])
            if self.before_call is not None:
                self.before_call()
            if self.call_reverts:
                raise RpcError(method, "execution reverted", 3)
            return "0x"
        raise AssertionError(f"unexpected RPC {method}")

    async def held_anywhere(self, tx_hashes: list[str]) -> bool:
        return any(h in self.pool for h in tx_hashes)

    async def call_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        out: list[Any] = []
        for method, params in calls:  # a failed entry comes back as its RpcError, as a node's
            try:
                out.append(await self.call(method, params))
            except RpcError as exc:
                out.append(exc)
        return out

    async def send_raw(
        self,
        raw: bytes,
        seen_ns: int | None = None,
        trigger: str = "block",
        only: str | None = None,
    ) -> SendResult:
        tx = dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())
        tx["hash"] = "0x" + keccak(raw).hex()
        tx["only"] = only  # the one endpoint it was sent to (a backrun's victim's), or None
        tx["to"] = to_checksum_address(tx["to"])
        self.sent.append(tx)
        if self.hold is not None:
            await self.hold.wait()
        self.answered.append(tx["hash"])
        if self.refuse > 0:
            self.refuse -= 1
            return SendResult(Verdict.REJECTED, errors={"fake": "insufficient funds"})
        self.pool[tx["hash"]] = tx
        return SendResult(Verdict.ACCEPTED, ["fake"])

    def _pending_nonces(self) -> set[int]:
        return {int(t["nonce"]) for t in self.pool.values() if t["nonce"] >= self.mined_nonce}

    def mine(self, tx_hash: str, status: int, gas_used: int = 100_000) -> None:
        """Mine one pooled tx (and drop the others of its nonce, as a node would)."""
        tx = self.pool.pop(tx_hash)
        for other in [h for h, t in self.pool.items() if t["nonce"] == tx["nonce"]]:
            del self.pool[other]
        self.head += 1
        self.mined_nonce = max(self.mined_nonce, int(tx["nonce"]) + 1)
        self.receipts[tx_hash] = {
            "status": hex(status),
            "gasUsed": hex(gas_used),
            "effectiveGasPrice": hex(2 * 10**9),
            "blockNumber": hex(self.head),
            "blockHash": block_hash(self.head),
            "logs": [],
        }
