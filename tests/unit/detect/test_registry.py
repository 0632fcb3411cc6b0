"""PoolRegistry: exact reserves from Sync logs, new pairs from PairCreated, exact rewinds."""

from __future__ import annotations

import pytest
from mev_common.amm.v2 import V2Pool
from mev_common.messages import Block, Log

from services.detect.registry import (
    PAIR_CREATED_TOPIC,
    SYNC_TOPIC,
    PoolRegistry,
    RewindTooDeep,
    after_snapshot,
)

FACTORY = "0x" + "f" * 40
T0, T1, T2 = ("0x" + c * 40 for c in "123")
P1, P2, NEW = ("0x" + c * 40 for c in "abc")


def cs(address: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(address)


def sync(pool: str, r0: int, r1: int, index: int) -> Log:
    data = "0x" + f"{r0:064x}{r1:064x}"
    return Log(
        address=pool, topics=[SYNC_TOPIC], data=data, log_index=index, tx_hash="0x" + "0" * 64
    )


def created(pair: str, t0: str, t1: str, index: int) -> Log:
    topics = [PAIR_CREATED_TOPIC, "0x" + "0" * 24 + t0[2:], "0x" + "0" * 24 + t1[2:]]
    data = "0x" + "0" * 24 + pair[2:] + f"{7:064x}"
    return Log(address=FACTORY, topics=topics, data=data, log_index=index, tx_hash="0x" + "0" * 64)


def block(n: int, logs: list[Log], reorg: bool = False, branch: str = "a") -> Block:
    h = "0x" + f"{ord(branch):02x}{n:062x}"
    return Block(chain_id=1, number=n, hash=h, parent_hash=h, timestamp=n, logs=logs, reorg=reorg)


@pytest.fixture
def registry() -> PoolRegistry:
    reg = PoolRegistry(factories={cs(FACTORY): ("A", 30)}, deny_tokens=frozenset({cs(T2)}))
    reg.load(
        [
            (V2Pool(cs(P1), cs(T0), cs(T1), 1000, 2000), "A"),
            (V2Pool(cs(P2), cs(T0), cs(T2), 5, 5), "A"),
        ],
        10,
        "0x" + "0" * 64,
    )
    return reg


def test_deny_listed_token_pool_is_not_loaded(registry: PoolRegistry) -> None:
    assert sorted(registry.pools) == [cs(P1)]


def test_sync_sets_exact_reserves_and_reports_changes(registry: PoolRegistry) -> None:
    changed = registry.apply_block(block(11, [sync(P1, 10**30, 3, 0), sync(P1, 2**112 - 1, 4, 5)]))
    assert changed == {cs(P1)}
    assert registry.pools[cs(P1)][3:5] == (2**112 - 1, 4)
    assert registry.block_number == 11


def test_pair_created_then_sync_in_one_block(registry: PoolRegistry) -> None:
    changed = registry.apply_block(block(11, [created(NEW, T0, T1, 0), sync(NEW, 77, 88, 1)]))
    assert changed == {cs(NEW)}
    assert registry.pools[cs(NEW)] == V2Pool(cs(NEW), cs(T0), cs(T1), 77, 88, 30)
    assert registry.dex_of[cs(NEW)] == "A"


def test_reorg_rewinds_exactly_to_the_fork(registry: PoolRegistry) -> None:
    registry.apply_block(block(11, [sync(P1, 1, 1, 0)]))
    registry.apply_block(block(12, [sync(P1, 2, 2, 0), created(NEW, T0, T1, 1)]))
    registry.apply_block(block(13, [sync(P1, 3, 3, 0)]))
    changed = registry.apply_block(block(12, [sync(P1, 9, 9, 0)], reorg=True, branch="b"))
    assert changed == {cs(P1)}
    assert registry.pools[cs(P1)][3:5] == (9, 9)
    assert cs(NEW) not in registry.pools
    assert registry.rewind(12) == {cs(P1)}
    assert registry.pools[cs(P1)][3:5] == (1, 1)


def test_rewind_below_journal_raises(registry: PoolRegistry) -> None:
    registry.apply_block(block(11, []))
    with pytest.raises(RewindTooDeep, match="cannot rewind to block 10: the journal starts at 11"):
        registry.rewind(10)


def test_malformed_logs_are_counted_and_skipped(registry: PoolRegistry) -> None:
    short = Log(
        address=P1, topics=[SYNC_TOPIC], data="0x" + "00" * 32, log_index=0, tx_hash="0x" + "0" * 64
    )
    bad_created = Log(
        address=FACTORY,
        topics=[PAIR_CREATED_TOPIC],
        data="0x",
        log_index=1,
        tx_hash="0x" + "0" * 64,
    )
    changed = registry.apply_block(block(11, [short, bad_created, sync(P1, 5, 6, 2)]))
    assert changed == {cs(P1)}
    assert registry.skipped_logs == 2
    assert registry.pools[cs(P1)][3:5] == (5, 6)


def test_blocks_buffered_before_the_snapshots_own_block_are_not_replayed() -> None:
    # a restarted ingest on a new chain: a reorg far below, then every block up to the head
    stream = [block(16, [], reorg=True, branch="n"), *(block(n, [], branch="n") for n in (17, 18))]
    stream += [block(19, [], branch="n"), block(20, [], branch="n")]
    assert after_snapshot(stream, 18, stream[2].hash) == stream[2:]
    # the same number on another branch is not the snapshot's block: replay everything
    assert after_snapshot(stream, 18, block(18, [], branch="o").hash) == stream
    # the snapshot is ahead of the stream: nothing to cut
    assert after_snapshot(stream, 25, block(25, [], branch="n").hash) == stream
    # a reorg after the snapshot's block is replayed (the snapshot may be on the old branch)
    late = [*stream[:3], block(18, [], reorg=True, branch="x")]
    assert after_snapshot(late, 18, stream[2].hash) == late[2:]
