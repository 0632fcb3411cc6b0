"""Submit's off-path head read is one of the stage's tasks (services/submit/chain_view.py): a
stop while it waits on an RPC answer cancels it and waits for it like every other loop, on a
real stage (real nats-server); before, it was a bare task left pending past the stage's end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from mev_common.bus import Bus
from mev_common.messages import Block
from mev_common.runtime import Runtime
from mev_common.settings import load_settings
from mev_common.stage import open_stage

from services.submit.chain_view import ChainView
from tests.support.stack import write_config

CHAIN = 31337


class SlowNode:
    """A node whose every answer never comes (the read is mid call at stop)."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.asked.set()
        await asyncio.Event().wait()

    async def call_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        raise AssertionError("not used")

    async def send_raw(self, raw: bytes, seen_ns: int | None = None, trigger: str = "") -> Any:
        raise AssertionError("not used")


def forged_block() -> Block:
    """A block message far above the chain's confirmed head (100)."""
    return Block(chain_id=CHAIN, number=10**6, hash=f"0x{10**6:064x}",
                 parent_hash=f"0x{10**6 - 1:064x}", timestamp=1_700_000_000,
                 base_fee_per_gas=7, logs=[])  # fmt: skip


def head_checks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if "_check_head" in repr(t.get_coro())]


async def test_stop_leaves_no_head_check_pending(bus: Bus, tmp_path: Path) -> None:
    url = f"nats://{bus.nc.connected_url.netloc}"
    settings = load_settings(write_config(tmp_path / "submit", url, CHAIN))
    rt = Runtime(service="submit", settings=settings, bus=bus, instance="stop-test")
    node = SlowNode()
    async with open_stage(rt) as stage:
        view = ChainView(settings, node, spawn=stage.spawn)
        view.head_guard.confirm(100, time.monotonic())
        assert not view.on_streamed_block(forged_block())  # above the confirmed head: ask
        await asyncio.wait_for(node.asked.wait(), 5)
        check = view.head_check
        assert check is not None and not check.done()
    assert check.cancelled()
    assert head_checks() == []


class BrokenNode(SlowNode):
    """A node whose head answer is malformed (no block number)."""

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.asked.set()
        return {"hash": "0x" + "11" * 32}


async def test_a_malformed_head_answer_does_not_end_the_stage(bus: Bus, tmp_path: Path) -> None:
    url = f"nats://{bus.nc.connected_url.netloc}"
    settings = load_settings(write_config(tmp_path / "submit", url, CHAIN))
    rt = Runtime(service="submit", settings=settings, bus=bus, instance="stop-test")
    async with open_stage(rt) as stage:
        view = ChainView(settings, BrokenNode(), spawn=stage.spawn)
        view.head_guard.confirm(100, time.monotonic())
        assert not view.on_streamed_block(forged_block())
        check = view.head_check
        assert check is not None
        await check  # logged and counted: the stage (and submit) runs on
        assert not rt.stop.is_set() and view.head.number == -1
