"""The ledger's records as values (services/submit/ledger.py writes and reads them): a tx row,
a bundle's settlement, an outcome waiting to be published, and what the ledger tells the
loss limits' running spend of its own writes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from mev_common.messages import Bundle, Outcome

UNRESOLVED = ("signed", "sent")
MINED = ("included", "reverted")  # outcomes whose gas and profit count in the loss limits


class WriteWatch(Protocol):
    """Told of the ledger's commits that move the loss limits' spend (SafetyStore)."""

    def tx_signed(self, tx: TxRecord) -> None: ...  # a signed tx is in flight

    def changed(self) -> None: ...  # anything else that may move it: catch up (the journal)


@dataclass(frozen=True)
class TxRecord:
    hash: str
    bundle_id: str
    kind: str
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas_limit: int
    deadline_block: int
    raw: str
    state: str
    created_at: float
    sent_at: float | None = None
    sender: str = ""  # the lane's address that signed it ('' in rows older than lanes: lane 0)

    @classmethod
    def signed(
        cls,
        tx: dict[str, Any],
        raw: bytes,
        tx_hash: str,
        *,
        bundle_id: str,
        kind: str,
        deadline_block: int,
        sender: str,
    ) -> TxRecord:
        """The row of a tx just signed from `tx` (a trade's or a cancel's: nonce, gas and
        fees are the signed ones), written before it is broadcast."""
        return cls(
            hash=tx_hash,
            bundle_id=bundle_id,
            kind=kind,
            nonce=tx["nonce"],
            max_fee_per_gas=tx["maxFeePerGas"],
            max_priority_fee_per_gas=tx["maxPriorityFeePerGas"],
            gas_limit=tx["gas"],
            deadline_block=deadline_block,
            raw="0x" + raw.hex(),
            state="signed",
            created_at=time.time(),
            sender=sender,
        )


@dataclass(frozen=True)
class Settled:
    """A bundle's end, written by `Ledger.resolve` in one transaction: its txs' final states
    (hash -> state), the mined receipt's row (None: nothing of ours mined), the outcome and the
    gas it cost."""

    bundle: Bundle
    outcome: Outcome
    tx_states: dict[str, str]
    receipt: dict[str, object] | None = None
    gas_cost: int = 0


@dataclass(frozen=True)
class PendingPublish:
    outcome: Outcome
    trace: str
    seen_ns: int
    revision: int = 0  # times the bundle was re-opened by a reorg
    corrections: int = 0  # times its booked outcome was corrected (a mined orphan cancel's gas)

    @property
    def version(self) -> str:
        """The message id's tail: a re-booked or corrected outcome is a new message (under
        the same id the stream would drop it as a duplicate)."""
        revision = f":r{self.revision}" if self.revision else ""
        return revision + (f":c{self.corrections}" if self.corrections else "")


TX_COLUMNS = (
    "hash, bundle_id, kind, nonce, max_fee_per_gas, max_priority_fee_per_gas, gas_limit, "
    "deadline_block, raw, state, created_at, sent_at, sender"
)


def tx_from_row(row: tuple[Any, ...]) -> TxRecord:
    """A `txs` row (SQLite returns the INTEGER/REAL columns as int/float)."""
    return TxRecord(
        hash=str(row[0]),
        bundle_id=str(row[1]),
        kind=str(row[2]),
        nonce=int(row[3]),
        max_fee_per_gas=int(str(row[4])),
        max_priority_fee_per_gas=int(str(row[5])),
        gas_limit=int(row[6]),
        deadline_block=int(row[7]),
        raw=str(row[8]),
        state=str(row[9]),
        created_at=float(row[10]),
        sent_at=None if row[11] is None else float(row[11]),
        sender=str(row[12] or ""),
    )
