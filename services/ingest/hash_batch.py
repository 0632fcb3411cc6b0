"""Hashes from a hash-only pending feed, fetched in batches without waiting for a batch to fill.

Why: a node that pushes pending hashes (not full transactions) sends one frame per tx, and a
wallet burst after a block is several frames at once; one `eth_getTransactionByHash` round trip
each made the last of a burst wait behind the others (and spent a call of the RPC budget's rate
limiter per hash in separate requests). Here the first hash is fetched at once, alone; those
that arrive while a fetch is in flight go together in the next one (one JSON-RPC batch). No
timer: a lone hash never waits for company.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("mev.ingest")

Fetch = Callable[[list[tuple[str, int]]], Awaitable[None]]


class HashBatcher:
    """`add` queues (hash, seen_ns); one fetch runs at a time, on everything queued so far."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._queued: list[tuple[str, int]] = []
        self._running: asyncio.Task[None] | None = None

    def add(self, tx_hash: str, seen_ns: int) -> None:
        self._queued.append((tx_hash, seen_ns))
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self._fetch(batch)
            except Exception as exc:  # the next batch still goes: one bad reply loses one batch
                log.warning("pending hash batch failed", extra={"fields": {"error": repr(exc)}})

    async def wait(self) -> None:
        """Until everything queued so far was fetched (tests, shutdown)."""
        while self._running is not None and not self._running.done():
            await asyncio.shield(self._running)
