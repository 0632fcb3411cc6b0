"""The submitter's outside world as small Protocols: the chain (JSON-RPC plus broadcast), the
ledger and the safety store. Production passes `RpcChain`, `Ledger` and `SafetyStore`; unit
tests pass in-memory fakes, so the whole decision (gate, limits, fees, nonces) runs without a
node (tests/unit/submit/test_submitter.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import RpcPool
from mev_common.messages import Bundle, Outcome

from services.submit import sender
from services.submit.ledger_records import PendingPublish, Settled, TxRecord
from services.submit.limits import Spend
from services.submit.safety import Trip
from services.submit.sender import SendResult


class ChainPort(Protocol):
    async def call(self, method: str, params: list[Any] | None = None) -> Any: ...

    async def call_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]: ...

    async def held_anywhere(self, tx_hashes: list[str]) -> bool: ...

    async def send_raw(
        self,
        raw: bytes,
        seen_ns: int | None = None,
        trigger: str = "block",
        only: str | None = None,
    ) -> SendResult: ...


class LedgerPort(Protocol):
    def outcome_for(self, bundle_id: str) -> Outcome | None: ...

    def book(
        self, bundle: Bundle, outcome: Outcome, trace: str = "", seen_ns: int = 0, gas_cost: int = 0
    ) -> None: ...

    def bundle(self, bundle_id: str) -> Bundle | None: ...

    def unpublished(self) -> list[PendingPublish]: ...

    def mark_published(self, bundle_id: str, corrections: int | None = None) -> None: ...

    def record_signed(self, bundle: Bundle, tx: TxRecord, trace: str, seen_ns: int) -> bool: ...

    def record_cancel(self, tx: TxRecord) -> None: ...

    def mark_sent(self, tx_hash: str) -> None: ...

    def trade_for(self, bundle_id: str) -> TxRecord | None: ...

    def txs_of(self, bundle_id: str) -> list[TxRecord]: ...

    def unresolved(self) -> list[TxRecord]: ...

    def resolve(self, settled: Settled) -> None: ...

    async def resolve_off_loop(self, settled: Settled) -> None: ...

    def recent_receipts(self, min_block: int) -> list[tuple[str, int, str]]: ...

    def reopen(self, bundle_id: str) -> None: ...

    def mined_on(self, sender: str, nonce: int, lane0: bool, other_than: str) -> str | None: ...

    def mined_count(self, sender: str, lane0: bool, above_block: int) -> int: ...

    def resolve_orphan_cancel(
        self,
        tx: TxRecord,
        state: str,
        receipt: dict[str, object] | None,
        gas_used: int,
        price: int,
        note: str,
    ) -> None: ...


class SafetyPort(Protocol):
    def active(self) -> Trip | None: ...

    def trip(self, reason: str, control_revision: int, now: float | None = None) -> Trip: ...

    def clear_if_rewritten(self, revision: int, now: float | None = None) -> Trip | None: ...

    def spend(self, native_token: str | None, now: float | None = None) -> Spend: ...


class RpcChain:
    """The RPC pool as a ChainPort: a broadcast goes to every healthy endpoint at once, or to
    `only` (a backrun: its victim's endpoint; services/submit/sender.py)."""

    def __init__(self, pool: RpcPool) -> None:
        self.pool = pool

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        return await self.pool.call(method, params)

    async def call_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return await self.pool.call_batch(calls)

    async def held_anywhere(self, tx_hashes: list[str]) -> bool:
        """Whether any endpoint's node still knows one of `tx_hashes`. A backrun went to its
        victim's node alone (sender.targets): asking only the best-ranked node would call it
        dropped and free its nonce while it is still pending elsewhere. An endpoint that fails
        to answer is skipped; if none answers, the RpcError goes up (the pass is retried)."""
        failed: RpcError | None = None
        answered = False
        for name in self.pool.states:
            for tx_hash in tx_hashes:
                try:
                    if await self.pool.call_on(name, "eth_getTransactionByHash", [tx_hash]):
                        return True
                    answered = True
                except RpcError as exc:
                    failed = exc
                    break  # this node is not answering: the next one
        if not answered and failed is not None:
            raise failed
        return False

    async def send_raw(
        self,
        raw: bytes,
        seen_ns: int | None = None,
        trigger: str = "block",
        only: str | None = None,
    ) -> SendResult:
        return await sender.send_raw(self.pool, raw, seen_ns, trigger, only)
