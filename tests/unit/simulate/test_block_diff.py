"""Block diffs (block_diff.py) and how the warm EVM takes them (warm.apply_diff, diff_feed.py):
the traces are anvil's own diffMode shape (a contract created with slot 5 = 1, then a tx
clearing that slot), on an in-process pyrevm EVM. Expected values worked out by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mev_common.messages import Block
from pyrevm import EVM

from services.simulate.block_diff import NewAccount, parse_block_diff, trace_params
from services.simulate.diff_feed import DiffFeed
from services.simulate.engine import TxSpec, block_env_after
from services.simulate.prefetch import prefetch_victim
from services.simulate.reference import AccountState
from services.simulate.warm import WarmEvm

C = "0x5fbdb2315678afecb367f032d93f642f64180aa3"  # the contract
S = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # its sender
POOL, OTHER, EXECUTOR = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "ee" * 20
RUNTIME = "0x6020355f355500"


def word(n: int) -> str:
    return "0x" + hex(n)[2:].rjust(64, "0")


CREATE = {"result": {
    "pre": {S: {"balance": "0x10"}},
    "post": {S: {"balance": "0x8", "nonce": 1},
             C: {"code": RUNTIME, "nonce": 1, "storage": {word(5): word(1)}}},
}}  # fmt: skip
CLEAR = {"result": {
    "pre": {C: {"balance": "0x0", "code": RUNTIME, "nonce": 1, "storage": {word(5): word(1)}},
            S: {"balance": "0x8", "nonce": 1}},
    "post": {C: {}, S: {"balance": "0x4", "nonce": 2}},
}}  # fmt: skip


def test_a_diff_is_each_slot_after_the_block_cleared_slots_zero_and_new_contracts() -> None:
    first = parse_block_diff(1, [CREATE])
    assert first.writes == {(C, 5): 1}
    assert first.created == {C: NewAccount(0, 1, bytes.fromhex(RUNTIME[2:]))}
    both = parse_block_diff(2, [CREATE, CLEAR])  # a later tx's value wins: cleared
    assert both.writes == {(C, 5): 0}
    assert trace_params(2) == ["0x2", {"tracer": "prestateTracer",
                                       "tracerConfig": {"diffMode": True}}]  # fmt: skip
    with pytest.raises(ValueError, match="block 3 tx 0: no diffMode"):
        parse_block_diff(3, [{"result": {"0xab": {"balance": "0x1"}}}])  # diffMode ignored


def head(number: int) -> Block:
    return Block(chain_id=1, number=number, hash="0x" + "11" * 32, parent_hash="0x" + "22" * 32,
                 timestamp=1_000 + number, base_fee_per_gas=1, gas_limit=30_000_000)  # fmt: skip


def warm_at(number: int) -> WarmEvm:
    warm = WarmEvm(None, 1, EXECUTOR)
    warm.evm, warm.head = EVM(), head(number)
    return warm


def test_only_routes_through_a_pending_pool_or_after_our_v3_trade_wait() -> None:
    warm = warm_at(6)
    warm.pending = {6: {POOL}}
    assert warm.waits([POOL.upper().replace("0X", "0x")]) and not warm.waits([OTHER])
    assert not warm.waits([])  # a V2 route reads neither
    warm.pending = {6: {EXECUTOR}}  # our own V3 trade: every route reads our balances
    assert warm.waits([]) and warm.waits([OTHER])


def test_a_diff_writes_its_slots_but_not_over_a_newer_patch_from_logs() -> None:
    warm = warm_at(6)
    assert warm.evm is not None
    warm.pending = {5: {POOL}, 6: {POOL}}
    warm.synced[(OTHER, 1)] = 6  # patched from block 6's Sync: newer than block 5's diff
    diff = parse_block_diff(5, [{"result": {
        "pre": {POOL: {"storage": {word(2): word(9)}}},
        "post": {POOL: {"storage": {word(0): word(7)}}, OTHER: {"storage": {word(1): word(3),
                                                                            word(4): word(8)}}},
    }}])  # fmt: skip
    assert warm.apply_diff(diff)
    storage = [warm.evm.storage(POOL, 0), warm.evm.storage(POOL, 2), warm.evm.storage(OTHER, 4)]
    assert storage == [7, 0, 8] and warm.evm.storage(OTHER, 1) == 0  # kept, not block 5's 3
    assert warm.pending == {6: {POOL}} and warm.diffs_applied == 1
    assert not warm.apply_diff(diff)  # not pending any more (or a refork since): ignored


def test_no_diff_makes_its_pools_dirty_and_our_v3_trade_refork() -> None:
    warm = warm_at(6)
    warm.pending = {5: {POOL}, 6: {OTHER, EXECUTOR}}
    warm.diff_failed(5, unsupported=False)
    assert (warm.dirty_v3, warm.diffs, warm.forks) == ({POOL}, True, 0)
    warm.diff_failed(6, unsupported=True)  # the RPC has no such trace: stop asking
    assert (warm.diffs, warm.forks, warm.pending, warm.dirty_v3) == (False, 1, {}, set())
    assert warm.last_refork_reason == "our executor traded through V3: no diff of block 6"


def test_the_feed_applies_pending_blocks_in_order_and_wakes_the_waiting() -> None:
    async def run() -> tuple[list[int], float]:
        warm = warm_at(7)
        warm.pending = {7: {POOL}, 6: {POOL}}
        asked: list[int] = []

        async def call(method: str, params: list[Any]) -> Any:
            assert method == "debug_traceBlockByNumber"
            asked.append(int(params[0], 16))
            await asyncio.sleep(0.01)
            value = word(int(params[0], 16))
            return [{"result": {"pre": {}, "post": {POOL: {"storage": {word(0): value}}}}}]

        feed = DiffFeed(warm, call)
        feed.on_block()
        feed.on_block()  # queued once each
        task = asyncio.ensure_future(feed.run())
        assert await feed.wait([OTHER], 1.0) < 0.005  # not pending: no wait
        waited = await feed.wait([POOL], 1.0)
        task.cancel()
        assert warm.evm is not None and warm.evm.storage(POOL, 0) == 7 and not warm.pending
        return asked, waited

    asked, waited = asyncio.run(run())
    assert asked == [6, 7] and 0.015 < waited < 0.5


def test_a_node_without_the_trace_turns_diffs_off_and_the_pool_reforks_on_use() -> None:
    async def run() -> WarmEvm:
        warm = warm_at(7)
        warm.pending = {7: {POOL}}

        async def call(method: str, params: list[Any]) -> Any:
            raise RuntimeError(
                "the method debug_traceBlockByNumber does not exist/is not available"
            )

        feed = DiffFeed(warm, call)
        feed.on_block()
        task = asyncio.ensure_future(feed.run())
        await feed.wait([POOL], 1.0)
        task.cancel()
        return warm

    warm = asyncio.run(run())
    assert (warm.diffs, warm.pending, warm.dirty_v3, warm.forks) == (False, {}, {POOL}, 0)
    warm.refresh([POOL])
    assert warm.forks == 1 and warm.last_refork_reason == f"V3 pool {POOL} changed"


TOKEN, HOLDER_SLOT = "0x" + "cc" * 20, 0x1234  # a token and its victim sender's balance slot


def test_an_older_diff_applied_after_a_trace_at_a_newer_head_keeps_the_traced_values() -> None:
    """Block 5 had a V3 swap (its diff pending); block 6 arrived; a victim traced at head 6
    loaded its sender's token balance as of block 6 (9: it spent 11 in block 6, no log the
    warm EVM patches). Block 5's diff (20, the balance before) came in after: it must not set
    the balance back to 20, nor the contract block 5 created back to its balance then, or the
    victim runs on a state the chain no longer has (funded when it is not). Its other slots
    are written; the older diff's pool slot too (not traced). Without a pending diff left,
    nothing is kept."""

    async def run() -> WarmEvm:
        warm = warm_at(6)
        warm.env = block_env_after(warm.head, 1, 1.0)  # type: ignore[arg-type]
        warm.pending = {5: {POOL}}

        async def call(method: str, params: list[Any]) -> Any:
            if method == "debug_traceCall":  # the victim at head 6
                assert params[1] == "0x6"
                return {S: {"balance": "0x64", "nonce": 3},
                        C: {"balance": "0x4d", "nonce": 1, "code": RUNTIME},
                        TOKEN: {"storage": {word(HOLDER_SLOT): word(9)}}}  # fmt: skip
            assert (method, params[0]) == ("debug_traceBlockByNumber", "0x5")
            return [CREATE, {"result": {
                "pre": {TOKEN: {"storage": {word(HOLDER_SLOT): word(31)}}},
                "post": {TOKEN: {"storage": {word(HOLDER_SLOT): word(20)}},
                         POOL: {"storage": {word(0): word(7)}}},
            }}]  # fmt: skip

        assert await prefetch_victim(call, warm, TxSpec(S, C, b"", 0, 100_000))
        feed = DiffFeed(warm, call)
        feed.on_block()
        task = asyncio.ensure_future(feed.run())
        await feed.wait([POOL], 1.0)
        task.cancel()
        return warm

    warm = asyncio.run(run())
    evm = warm.evm
    assert evm is not None and warm.diffs_applied == 1 and not warm.pending
    assert evm.storage(TOKEN, HOLDER_SLOT) == 9 and evm.storage(POOL, 0) == 7
    assert evm.basic(C).balance == 0x4D and evm.storage(C, 5) == 1  # created: slot from diff
    assert warm.diff_kept == 1 and warm.synced == {} and warm.accounts_at == {}


def test_a_diff_of_the_head_itself_or_with_no_older_pending_keeps_nothing_extra() -> None:
    """A trace at the head of the pending diff holds the same values: nothing to keep, and
    without a pending diff older than the head a load records nothing (bounded memory)."""
    warm = warm_at(5)
    warm.pending = {5: {POOL}}
    prestate = {TOKEN: AccountState(0, 0, b"", {HOLDER_SLOT: 20})}
    assert warm.load(warm.head, prestate, {}, {})  # type: ignore[arg-type]
    assert warm.synced == {} and warm.accounts_at == {}
    diff = parse_block_diff(5, [{"result": {
        "pre": {}, "post": {TOKEN: {"storage": {word(HOLDER_SLOT): word(20)}}}}}])  # fmt: skip
    assert warm.apply_diff(diff) and warm.diff_kept == 0
    assert warm.evm is not None and warm.evm.storage(TOKEN, HOLDER_SLOT) == 20
