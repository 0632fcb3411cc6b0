"""HeadFollower on a scripted chain: dedup, backfill in order, reorgs flagged at the fork."""

from __future__ import annotations

import pytest

from services.ingest.follower import HeadFollower, RawBlock, ReorgTooDeep


def h(branch: str, n: int) -> str:
    return "0x" + f"{ord(branch):02x}{n:062x}"


class Chain:
    """Canonical blocks by number; `fork` replaces the tail with another branch."""

    def __init__(self, length: int) -> None:
        self.blocks: dict[int, RawBlock] = {}
        for n in range(length):
            self.add(n, "a", "a" if n else "g")

    def add(self, n: int, branch: str, parent_branch: str) -> RawBlock:
        raw = {"number": hex(n), "hash": h(branch, n), "parentHash": h(parent_branch, n - 1)}
        self.blocks[n] = raw
        return raw

    def fork(self, at: int, to: int, branch: str = "b", parent: str = "a") -> None:
        for n in range(at, to + 1):
            self.add(n, branch, parent if n == at else branch)
        for n in [k for k in self.blocks if k > to]:
            del self.blocks[n]

    async def fetch(self, n: int) -> RawBlock | None:
        return self.blocks.get(n)


def summary(steps: list) -> list[tuple[int, str, bool]]:
    return [(s.number, s.hash[2:4], s.reorg) for s in steps]


async def test_first_head_then_dedup_then_next() -> None:
    chain = Chain(10)
    f = HeadFollower(chain.fetch)
    assert summary(await f.advance(chain.blocks[5])) == [(5, "61", False)]
    assert await f.advance(chain.blocks[5]) == []
    assert summary(await f.advance(chain.blocks[6])) == [(6, "61", False)]


async def test_gap_is_backfilled_in_order() -> None:
    chain = Chain(20)
    f = HeadFollower(chain.fetch)
    await f.advance(chain.blocks[3])
    steps = await f.advance(chain.blocks[9])
    assert [s.number for s in steps] == [4, 5, 6, 7, 8, 9]
    assert not any(s.reorg for s in steps)
    assert f.backfilled == 5


async def test_backfill_is_bounded() -> None:
    chain = Chain(1000)
    f = HeadFollower(chain.fetch, max_backfill=10)
    await f.advance(chain.blocks[1])
    steps = await f.advance(chain.blocks[900])
    assert [s.number for s in steps] == list(range(890, 901))


async def test_reorg_replays_from_fork_point_with_flag() -> None:
    chain = Chain(10)
    f = HeadFollower(chain.fetch)
    for n in range(5, 10):
        await f.advance(chain.blocks[n])
    chain.fork(at=7, to=10)  # blocks 7..9 replaced, a new block 10 on top
    steps = await f.advance(chain.blocks[10])
    assert summary(steps) == [
        (7, "62", True),
        (8, "62", False),
        (9, "62", False),
        (10, "62", False),
    ]
    assert f.reorgs == 1
    assert f.published[9] == h("b", 9)


async def test_same_height_replacement_is_a_reorg() -> None:
    chain = Chain(10)
    f = HeadFollower(chain.fetch)
    for n in range(5, 10):
        await f.advance(chain.blocks[n])
    chain.fork(at=9, to=9)
    assert summary(await f.advance(chain.blocks[9])) == [(9, "62", True)]


async def test_reorg_deeper_than_memory_raises() -> None:
    chain = Chain(10)
    f = HeadFollower(chain.fetch)
    for n in range(5, 10):
        await f.advance(chain.blocks[n])
    chain.fork(at=2, to=10)
    with pytest.raises(ReorgTooDeep, match="fork point is below block 5"):
        await f.advance(chain.blocks[10])


async def test_memory_is_bounded_by_depth() -> None:
    chain = Chain(50)
    f = HeadFollower(chain.fetch, depth=8)
    for n in range(50):
        await f.advance(chain.blocks[n])
    assert sorted(f.published) == list(range(42, 50))
