"""Ingest: chain RPC in, `mev.<chain>.blocks` and `mev.<chain>.mempool` out.

Skeleton of the platform issue: polls new heads and the pending-tx filter of the first RPC
endpoint over raw JSON-RPC. The ingest issue replaces the polling with the RPC pool, WebSocket
heads, logs of tracked pools, backfill and reorg detection.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mev_common import metrics, subjects
from mev_common.bus import Retryable
from mev_common.chain.jsonrpc import JsonRpcClient, RpcError
from mev_common.runtime import Check, Runtime

from services.ingest.normalize import block_from_rpc, pending_from_rpc

log = logging.getLogger("mev.ingest")


async def main(rt: Runtime) -> None:
    endpoint = rt.settings.chain.rpc_endpoints[0]
    rpc = JsonRpcClient(
        endpoint.name, endpoint.url, endpoint.timeout_s, pool_size=endpoint.pool_size
    )
    rt.add_check(
        "rpc",
        lambda: Check(rpc.last_error is None, rpc.last_error or "ok", critical=False),
    )
    loops = [poll_blocks(rt, rpc)]
    if rt.settings.chain.pending_feed:
        loops.append(poll_pending(rt, rpc))
    else:
        rt.add_check("mempool", lambda: Check(True, "chain has no pending feed: block-driven only"))
    try:
        await asyncio.gather(*loops)
    finally:
        await rpc.close()


async def _pause(rt: Runtime, seconds: float) -> None:
    try:
        await asyncio.wait_for(rt.stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def poll_blocks(rt: Runtime, rpc: JsonRpcClient) -> None:
    """Publish each new head once (Nats-Msg-Id = block hash)."""
    interval = max(0.05, rt.settings.chain.block_time_s / 4)
    last: int | None = None
    while not rt.stop.is_set():
        try:
            head = await rpc.call("eth_getBlockByNumber", ["latest", False])
        except RpcError:
            metrics.ERRORS.labels(kind="rpc").inc()
            await _pause(rt, 1.0)
            continue
        seen_ns = time.time_ns()
        if head and (last is None or int(head["number"], 16) > last):
            block = block_from_rpc(rt.chain_id, head)
            try:
                await rt.bus.publish(
                    subjects.blocks(rt.chain_id),
                    block,
                    msg_id=block.hash,
                    trace=block.hash,
                    seen_ns=seen_ns,
                )
            except Retryable:
                await _pause(rt, 0.5)
                continue
            last = block.number
            metrics.TRANSACTIONS_PROCESSED.labels(stage="ingest").inc()
            metrics.GAS_PRICE.set(block.base_fee_per_gas)
            rt.ready = True
        await _pause(rt, interval)


async def poll_pending(rt: Runtime, rpc: JsonRpcClient) -> None:
    """Publish pending txs seen through a pending-transaction filter (Nats-Msg-Id = tx hash)."""
    filter_id: str | None = None
    while not rt.stop.is_set():
        try:
            if filter_id is None:
                filter_id = await rpc.call("eth_newPendingTransactionFilter")
            hashes = await rpc.call("eth_getFilterChanges", [filter_id]) or []
        except RpcError:
            filter_id = None
            await _pause(rt, 1.0)
            continue
        for tx_hash in hashes:
            seen_ns = time.time_ns()
            try:
                raw = await rpc.call("eth_getTransactionByHash", [tx_hash])
            except RpcError:
                continue
            if not raw:
                continue
            tx = pending_from_rpc(rt.chain_id, raw)
            try:
                await rt.bus.publish(
                    subjects.mempool(rt.chain_id),
                    tx,
                    msg_id=tx.hash,
                    trace=tx.hash,
                    seen_ns=seen_ns,
                )
            except Retryable:
                continue
            metrics.TRANSACTIONS_PROCESSED.labels(stage="ingest").inc()
        await _pause(rt, 0.1)
