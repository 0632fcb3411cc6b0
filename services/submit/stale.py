"""Is a bundle's block on the chain submit sends to? Leftovers of another chain are refused.

Why: the bundle stream survives a restart (data/nats). After a devnet restart its bundles name
blocks of the old chain: a number the new chain has not reached (taken as proof of a head our
view lacks, it would pass the deadline check) or a hash the new chain does not have at that
height. Their profit was proven on state that does not exist here, so they are refused as stale.
A bundle whose block was reorged away is refused the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

FetchBlock = Callable[[int], Awaitable[dict[str, Any] | None]]


class BlockHashes:
    """Recent canonical block hashes (from the block stream), fetched over RPC when missing."""

    def __init__(self, fetch: FetchBlock, keep: int = 256) -> None:
        self._fetch = fetch
        self._keep = keep
        self._hashes: dict[int, str] = {}
        self._streamed: set[int] = set()  # heights whose hash came from the block stream

    def saw(self, number: int, block_hash: str, streamed: bool = False) -> None:
        self._hashes[number] = block_hash.lower()
        if streamed:
            self._streamed.add(number)
        else:
            self._streamed.discard(number)
        if len(self._hashes) > self._keep:
            for old in sorted(self._hashes)[: len(self._hashes) - self._keep]:
                del self._hashes[old]
                self._streamed.discard(old)

    def streamed(self, number: int) -> str | None:
        """The canonical hash at `number` as the block stream last told it (which announces
        every reorg), None if the stream did not: only such a hash spares an RPC call."""
        return self._hashes.get(number) if number in self._streamed else None

    def forget_from(self, number: int) -> None:
        """A reorg replaced blocks from `number` on: their cached hashes are no longer true."""
        for n in [n for n in self._hashes if n >= number]:
            del self._hashes[n]
            self._streamed.discard(n)

    async def stale_reason(self, number: int, block_hash: str | None, head: int) -> str | None:
        """None if block `number` (with `block_hash`, when given) is on this chain."""
        known = self._hashes.get(number)
        if known is None or (block_hash is not None and known != block_hash.lower()):
            block = await self._fetch(number)
            if block is None:
                return f"stale: block {number} does not exist on this chain (head {head})"
            known = str(block["hash"]).lower()
            self.saw(number, known)
        if block_hash is not None and known != block_hash.lower():
            return f"stale: block {number} is {known} on this chain, the bundle's is {block_hash}"
        return None
