"""Submit's view of the chain: the head and its next base fee, recent canonical hashes, the
polled head's production estimate and recent receipts for reorgs.

The head is the newer of submit's own RPC reads (`fetch_head`) and ingest's block messages
(`on_streamed_block`, fed by block_feed.py). The bus is hostile: a message raises the head no
further than `head_guard.HeadGuard` lets it past what the chain last confirmed; a higher one is
counted (`mev_bot_errors_total{kind="submit_head_unconfirmed"}`) and read from the chain off
the hot path, never on a bundle's way through the gate. That read is one of the stage's tasks
(`spawn`: `Stage.spawn` in the service), so a stop cancels it and waits for it like every other
loop rather than leaving it pending mid RPC call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.block_phase import ProductionClock
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.rpc_pool import backoff_s
from mev_common.messages import Block
from mev_common.settings import Settings

from services.submit.fees import next_base_fee
from services.submit.head_guard import HeadGuard
from services.submit.ports import ChainPort
from services.submit.reorg import ReorgWatch
from services.submit.stale import BlockHashes

log = logging.getLogger("mev.submit")

# starts a background task owned by the service (`Stage.spawn`: cancelled and awaited at stop)
Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]]


def _loop_task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[Any]:
    """Without a stage (unit tests): a plain task on the running loop."""
    return asyncio.get_running_loop().create_task(coro, name=name)


@dataclass
class Head:
    number: int = -1
    next_base_fee: int = 0
    seen_at: float = 0.0


class ChainView:
    """The chain as submit sees it (the Submitter's base: its state and the reads that feed it)."""

    def __init__(self, settings: Settings, pool: ChainPort, spawn: Spawn | None = None) -> None:
        chain = settings.chain
        self.pool = pool
        self.spawn = spawn or _loop_task
        self.priority_fee = settings.submit.priority_fee
        self.head = Head()
        self.head_checked_at = 0.0  # last time the chain confirmed our head view (stream or RPC)
        # older, the head is read over RPC before a bundle is decided (block_feed.py widens it)
        self.head_max_age_s = 2 * chain.block_time_s
        self.head_guard = HeadGuard(chain.block_time_s)
        self.head_check: asyncio.Task[None] | None = None  # a refused head read off the path
        self.blocks = BlockHashes(self._fetch_block)
        # the polled head's production (block_feed.py feeds it)
        self.production = ProductionClock(chain.block_time_s, chain.head_age_margin_s)
        self.reorgs = ReorgWatch(settings.database.reorg_depth)

    def on_block(self, number: int, base_fee: int, gas_used: int, gas_limit: int) -> None:
        self.head_checked_at = time.monotonic()
        if number > self.head.number:
            self.head = Head(number, next_base_fee(base_fee, gas_used, gas_limit), time.monotonic())
            metrics.GAS_PRICE.set(self.head.next_base_fee + self.priority_fee)

    async def _fetch_block(self, number: int) -> dict[str, Any] | None:
        block = await self.pool.call("eth_getBlockByNumber", [hex(number), False])
        return block if isinstance(block, dict) else None

    async def fetch_head(self) -> None:
        block = await self.pool.call("eth_getBlockByNumber", ["latest", False])
        number = int(block["number"], 16)
        self.head_guard.confirm(number, time.monotonic())
        if block.get("hash"):  # our own read: the head's bundles need no block fetch of theirs
            self.blocks.saw(number, str(block["hash"]))
        self.on_block(
            number,
            int(block.get("baseFeePerGas") or "0x0", 16),
            int(block["gasUsed"], 16),
            int(block["gasLimit"], 16),
        )

    def on_streamed_block(self, block: Block) -> bool:
        """A block message's head, base fee and canonical hash, taken if `head_guard` admits
        its number (True); else nothing of it is taken and the chain is asked off the path."""
        now = time.monotonic()
        if not self.head_guard.admits(block.number, now):
            self._unconfirmed(block.number, now)
            return False
        self.blocks.saw(block.number, block.hash, streamed=True)
        self.on_block(block.number, block.base_fee_per_gas, block.gas_used, block.gas_limit)
        return True

    def _unconfirmed(self, number: int, now: float) -> None:
        metrics.ERRORS.labels(kind="submit_head_unconfirmed").inc()
        if not self.head_guard.check_due(now) or (
            self.head_check is not None and not self.head_check.done()
        ):
            return
        # past the horizon only (once a horizon under an RPC budget): routine, not a warning
        level = logging.INFO if self.head_guard.routine(number, now) else logging.WARNING
        log.log(
            level,
            "block message above the confirmed head: not taken, reading the chain's head",
            extra={"fields": {"number": number, "ceiling": self.head_guard.ceiling(now)}},
        )
        if not budget.process_budget().allows(1, keep_free=0.1):
            metrics.RPC_BUDGET_SKIPS.labels(what="submit_head_check").inc()
            return
        self.head_check = self.spawn(self._check_head(), "head-check")

    async def _check_head(self) -> None:
        """One stage task: whatever a node answers, it must not end the stage (a task that
        raises does), only this read."""
        try:
            await self.fetch_head()
        except RpcError as exc:
            log.warning("head check failed", extra={"fields": {"error": str(exc)}})
        except Exception as exc:  # e.g. a node's malformed block: counted like tracking's
            metrics.ERRORS.labels(kind="submit_track").inc()
            log.exception("head check failed", extra={"fields": {"error": repr(exc)}})


async def count_at_head(
    pool: ChainPort, address: str, tag: str, rounds: int = 3
) -> tuple[int, int]:
    """`address`'s nonce count (at `tag`) and the head of the node that counted it, in one
    batch to one node; `rounds` tries with backoff while every endpoint fails (as `call`). An
    error the node answered is raised at once."""
    asked = [("eth_getTransactionCount", [address, tag]), ("eth_blockNumber", [])]
    for attempt in range(1, rounds + 1):
        try:
            replies = await pool.call_batch(asked)
            break
        except RpcError:
            if attempt == rounds:
                raise
            await asyncio.sleep(backoff_s(attempt))
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return int(replies[0], 16), int(replies[1], 16)
