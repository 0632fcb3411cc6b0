"""The pure parts of running inside HyperEVM's RPC limits (issue 14): range polling, checked
latest reads, the nonce window, block-driven tracking, the stand-in's sliding count."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mev_common.chain.latest import BlockMoved, checked, read_at_latest
from mev_common.messages import Block, Log
from mev_ops.devnet.hyperevm_proxy import max_window
from mev_ops.devnet.hyperevm_rules import refusal_for

from services.ingest.range_poll import SAFE_SPAN, RangePoller, poll_interval_s
from services.simulate.warm import WarmEvm
from services.submit.block_feed import TrackTrigger
from services.submit.nonces import NonceManager, NoNonceFree

H = "0x" + "ab" * 32
TX = "0x" + "cd" * 32
POOL = "0x" + "11" * 20


def header(number: int, parent: str = H) -> dict[str, Any]:
    return {"number": hex(number), "hash": "0x" + f"{number:064x}", "parentHash": parent,
            "timestamp": hex(1000 + number), "baseFeePerGas": "0x7", "gasLimit": hex(2_000_000),
            "gasUsed": "0x0"}  # fmt: skip


def raw_log(block: int, index: int) -> dict[str, Any]:
    return {"address": POOL, "topics": [H], "data": "0x", "logIndex": hex(index),
            "transactionHash": TX, "blockNumber": hex(block), "blockHash": H}  # fmt: skip


def test_range_poll_one_batch_one_message_nothing_lost() -> None:
    poller = RangePoller(999)
    assert [m for m, _ in poller.calls(0)] == ["eth_getBlockByNumber"]  # first: the head alone
    assert poller.see_head(header(100))
    (logs_call,) = poller.catch_up_calls()
    assert logs_call[1][0]["fromBlock"] == logs_call[1][0]["toBlock"] == hex(100)
    first = poller.block(header(100), [raw_log(100, 0)])
    assert first is not None and first.number == 100 and len(first.logs) == 1
    # then one batch per poll: head + logs since the last published block, to `latest`
    calls = poller.calls(3)
    assert [m for m, _ in calls] == ["eth_getBlockByNumber", "eth_getLogs"]
    query = calls[1][1][0]
    assert query["fromBlock"] == hex(101) and query["toBlock"] == "latest"
    for method, params in calls:
        assert refusal_for(method, params, 103) is None  # within HyperEVM's rules
    # a block landed between the header and the logs: its logs wait for the next poll
    block = poller.block(header(103), [raw_log(104, 0), raw_log(102, 1), raw_log(101, 3)])
    assert block is not None and (block.number, block.logs_from, block.first_number) == (
        103,
        101,
        101,
    )
    assert [(lg.block_number, lg.log_index) for lg in block.logs] == [(101, 3), (102, 1)]
    nxt = poller.block(header(105), [raw_log(104, 0)])
    assert (
        nxt is not None and nxt.logs_from == 104 and [lg.block_number for lg in nxt.logs] == [104]
    )
    assert poller.block(header(105), []) is None  # nothing new: nothing published


def test_range_poll_never_asks_past_the_log_span_limit() -> None:
    poller = RangePoller(999, published=100, known_head=100)
    assert [m for m, _ in poller.calls(SAFE_SPAN + 5)] == ["eth_getBlockByNumber"]
    assert poller.see_head(header(300))
    (call,) = poller.catch_up_calls()
    span = int(call[1][0]["toBlock"], 16) - int(call[1][0]["fromBlock"], 16) + 1
    assert span == SAFE_SPAN and refusal_for(*call, 300) is None
    block = poller.block(header(300), [])
    assert block is not None and block.first_number == 300 - SAFE_SPAN + 1  # a gap: reload


def test_poll_interval_pays_for_itself() -> None:
    assert poll_interval_s(None, 1.0, 2) == 0.5
    # 50 calls a minute, 2 per poll, 90 %: a poll every 2.67 s = 45 calls a minute
    assert poll_interval_s(50, 1.0, 2) == pytest.approx(60 * 2 / 45)


def test_checked_latest_read_discards_a_batch_a_block_landed_in() -> None:
    replies = [[header(7), "0x1", "0x8"], [header(8), "0x1", "0x8"]]
    seen: list[list[tuple[str, list[Any]]]] = []

    async def batch(calls: list[tuple[str, list[Any]]]) -> list[Any]:
        seen.append(calls)
        return replies[len(seen) - 1]

    read = asyncio.run(read_at_latest(batch, [("eth_getStorageAt", [POOL, "0x0", "latest"])]))
    assert read.number == 8 and read.results == ["0x1"] and len(seen) == 2
    assert seen[0][0][0] == "eth_getBlockByNumber" and seen[0][-1][0] == "eth_blockNumber"
    assert checked([None, "0x1", "0x8"]) is None

    async def always_moving(calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return [header(7), "0x1", "0x8"]

    with pytest.raises(BlockMoved):
        asyncio.run(read_at_latest(always_moving, [], tries=3))


def test_nonce_window_never_more_than_max_ahead_of_the_chain() -> None:
    nonces = NonceManager(max_in_flight=8)
    nonces.sync(5)
    taken = [nonces.take() for _ in range(8)]
    assert taken == list(range(5, 13))
    with pytest.raises(NoNonceFree):
        nonces.take()
    # released locally but the chain has not counted them: still 8 ahead, refused
    for n in taken:
        nonces.release(n)
    with pytest.raises(NoNonceFree, match="ahead of the chain"):
        nonces.take()
    nonces.confirmed_up_to(10)
    assert nonces.take() == 13


def test_tracking_runs_when_a_block_shows_our_tx_or_the_fallback_is_due() -> None:
    now = [100.0]
    trigger = TrackTrigger(fallback_s=6.0, clock=lambda: now[0])
    trigger.tracked()
    ours = Log(address=POOL, topics=[H], data="0x", log_index=0, tx_hash=TX)
    block = Block(chain_id=999, number=5, hash=H, parent_hash=H, timestamp=1, logs=[ours])
    assert not trigger.on_block(block, {"0x" + "ee" * 32})
    assert not trigger.should_track(1)
    assert trigger.on_block(block, {TX})
    assert trigger.should_track(1)
    trigger.tracked()
    assert not trigger.should_track(1)
    now[0] += 6.0
    assert trigger.should_track(1)  # a reverted trade has no logs: the fallback finds it
    assert not trigger.should_track(0)  # nothing unresolved: no calls


def test_sliding_count_after_the_first_minute() -> None:
    times = [0.0] * 300 + [60.0 + i for i in range(70)]  # start-up burst, then 1 a second
    assert max_window(times, 60.0, 60.0) == 60
    assert max_window([0.0, 10.0], 60.0, 60.0) is None  # does not span a window yet


def block(number: int, first: int | None, parent: str, logs: list[Log] | None = None) -> Block:
    return Block(chain_id=999, number=number, hash="0x" + f"{number:064x}", parent_hash=parent,
                 timestamp=1000 + number, logs=logs or [], logs_from=first)  # fmt: skip


def test_warm_evm_takes_a_message_spanning_blocks_and_reforks_on_a_gap() -> None:
    warm = WarmEvm(None, 999, "0x" + "22" * 20)
    warm.fork(block(10, None, H))
    assert warm.evm is not None and warm.has_state([]) and not warm.has_state([POOL])
    # blocks 11..13 in one message (parent hash of 13 is 12's, which we never saw): patched
    foreign = Log(address=POOL, topics=[H], data="0x", log_index=0, tx_hash=TX, block_number=12)
    warm.advance(block(13, 11, "0x" + "99" * 32, [foreign]))
    assert (warm.forks, warm.patched_blocks, warm.head.number if warm.head else None) == (1, 1, 13)
    warm.advance(block(16, 15, H))  # 14 is missing: refork
    assert warm.forks == 2 and "gap" in warm.last_refork_reason
    assert block(16, 15, H).logs_after(15) == []
