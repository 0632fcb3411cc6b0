"""Following the chain head: every block once, in order, gaps backfilled, reorgs flagged.

Pure decision logic over an injected `fetch_block(number)`, so it is tested on a scripted chain
without a node. Whatever the head source (WebSocket newHeads, HTTP polling, a reconnect after a
gap), `advance(head)` returns the blocks to publish, in order:
- a head already published (same hash) -> nothing (dedup by hash);
- a head ahead of the last published one -> the missing blocks first (backfill), then the head;
- a block whose parent is not the hash we published at that height -> a reorg: the canonical
  blocks from the fork point up, the first one flagged `reorg=True` so detect rewinds to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

RawBlock = dict[str, Any]
FetchBlock = Callable[[int], Awaitable[RawBlock | None]]


def number_of(raw: RawBlock) -> int:
    value = raw["number"]
    return int(value, 16) if isinstance(value, str) else int(value)


@dataclass(frozen=True)
class Step:
    """One block to publish; `reorg` marks the first block of a replacing branch."""

    raw: RawBlock
    reorg: bool = False

    @property
    def number(self) -> int:
        return number_of(self.raw)

    @property
    def hash(self) -> str:
        return str(self.raw["hash"])


class ReorgTooDeep(Exception):
    """The fork point is older than the blocks we remember: detect must reload state."""


@dataclass
class HeadFollower:
    fetch_block: FetchBlock
    depth: int = 128
    max_backfill: int = 256
    published: dict[int, str] = field(default_factory=dict)
    reorgs: int = 0
    backfilled: int = 0

    @property
    def last(self) -> int | None:
        return max(self.published) if self.published else None

    async def advance(self, head: RawBlock) -> list[Step]:
        number, last = number_of(head), self.last
        if self.published.get(number) == head["hash"]:
            return []
        if last is None:
            return [self._accept(Step(head))]
        if number <= last:  # same height or lower with another hash: the chain was replaced
            return await self._reorg_from(head)
        steps: list[Step] = []
        start = max(last + 1, number - self.max_backfill)
        for n in range(start, number):
            raw = await self.fetch_block(n)
            if raw is None:  # the node does not have it (yet): publish what we can, in order
                break
            steps.extend(await self._extend(raw))
            self.backfilled += 1
        steps.extend(await self._extend(head))
        return steps

    async def _extend(self, raw: RawBlock) -> list[Step]:
        number = number_of(raw)
        parent = self.published.get(number - 1)
        if parent is None or parent == raw["parentHash"]:
            return [self._accept(Step(raw))]
        return await self._reorg_from(raw)

    async def _reorg_from(self, tip: RawBlock) -> list[Step]:
        """Walk back from `tip` until its ancestor is a block we published; replay from there."""
        branch = [tip]
        n = number_of(tip) - 1
        oldest = min(self.published)
        while n >= oldest:
            if self.published.get(n) == branch[-1]["parentHash"]:
                break
            raw = await self.fetch_block(n)
            if raw is None:
                raise ReorgTooDeep(f"block {n} vanished while resolving a reorg")
            branch.append(raw)
            n -= 1
        else:
            raise ReorgTooDeep(f"fork point is below block {oldest}, the oldest we remember")
        self.reorgs += 1
        fork_at = number_of(branch[-1])
        for stale in [k for k in self.published if k >= fork_at]:
            del self.published[stale]
        branch.reverse()
        return [self._accept(Step(raw, reorg=(i == 0))) for i, raw in enumerate(branch)]

    def _accept(self, step: Step) -> Step:
        self.published[step.number] = step.hash
        for old in [k for k in self.published if k <= step.number - self.depth]:
            del self.published[old]
        return step
