"""Booked receipts whose block left the canonical chain: found, so the ledger is re-opened.

Why: a receipt booked at block N is only true while N's hash is canonical. A reorg replaces a
suffix of the chain (every block from the fork point up), so if any of our receipts within
`database.reorg_depth` blocks was replaced, the highest one was too: one `eth_getBlockByNumber`
per new head (for the highest receipt) detects it; only then are the others checked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from mev_common import metrics

from services.submit.lanes import Lane
from services.submit.ledger_records import TxRecord
from services.submit.ports import ChainPort, LedgerPort
from services.submit.stale import BlockHashes

log = logging.getLogger("mev.submit")

# heights -> canonical hash (None: the chain has no such block now)
FetchHashes = Callable[[list[int]], Awaitable[dict[int, str | None]]]
Receipt = tuple[str, int, str]  # bundle id, block number, block hash (as booked)


def reorged(receipts: list[Receipt], canonical: dict[int, str | None]) -> list[str]:
    """Pure: the bundles whose booked block hash is not the canonical one at its height."""
    out: list[str] = []
    for bundle_id, number, block_hash in receipts:
        if number in canonical and canonical[number] != block_hash and bundle_id not in out:
            out.append(bundle_id)
    return out


class ReorgWatch:
    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.checked_head = -1

    async def check(self, head: int, receipts_from: Callable[[int], list[Receipt]],
                    fetch: FetchHashes) -> list[str]:  # fmt: skip
        """Bundles to re-open; at most once per new head (and never with depth 0)."""
        if self.depth <= 0 or head <= self.checked_head:
            return []
        receipts = receipts_from(max(0, head - self.depth))
        if receipts:
            top = receipts[0]  # highest block first
            canonical = await fetch([top[1]])
            if canonical.get(top[1]) != top[2]:
                canonical = await fetch(sorted({n for _, n, _ in receipts}))
                self.checked_head = head
                return reorged(receipts, canonical)
        self.checked_head = head
        return []


async def reopen_reorged(
    watch: ReorgWatch,
    ledger: LedgerPort,
    lane_of: Callable[[TxRecord], Lane],
    pool: ChainPort,
    blocks: BlockHashes,
    head: int,
) -> None:
    """Receipts whose block left the canonical chain: back in flight, tracked again."""

    async def canonical(numbers: list[int]) -> dict[int, str | None]:
        """Hashes the block stream gave (no RPC: ingest announces every reorg), else fetched."""
        out: dict[int, str | None] = {n: h for n in numbers if (h := blocks.streamed(n))}
        missing = [n for n in numbers if n not in out]
        replies = await pool.call_batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in missing]
        )
        for number, reply in zip(missing, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            out[number] = str(reply["hash"]).lower() if isinstance(reply, dict) else None
        return out

    for bundle_id in await watch.check(head, ledger.recent_receipts, canonical):
        ledger.reopen(bundle_id)
        for tx in ledger.txs_of(bundle_id):
            if tx.state in ("signed", "sent"):
                lane_of(tx).nonces.hold(tx.nonce)  # never handed out again before a resync
        metrics.ERRORS.labels(kind="receipt_reorged").inc()
        log.warning(
            "receipt's block left the canonical chain: bundle re-opened",
            extra={"fields": {"bundle": bundle_id, "head": head}},
        )
