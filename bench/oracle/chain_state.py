"""Exact pool state and base fees at past blocks, read from the node in JSON-RPC batches.

Why eth_call at a block number: the oracle judges each block's end state, not whatever the
chain looks like when it gets round to it; one batch per few blocks keeps anvil's load small
(the reads happen after the run, so they never compete with the bot).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import httpx

GET_RESERVES = "0x0902f1ac"  # getReserves()
BLOCKS_PER_BATCH = 8


def batch_call(rpc_url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    body = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    replies = httpx.post(rpc_url, json=body, timeout=60).json()
    by_id = {r["id"]: r for r in replies}
    out = []
    for i, (method, _) in enumerate(calls):
        reply = by_id[i]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        out.append(reply["result"])
    return out


def _chunks(blocks: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(blocks), BLOCKS_PER_BATCH):
        yield blocks[i : i + BLOCKS_PER_BATCH]


def fetch_reserves(
    rpc_url: str, pairs: Sequence[str], blocks: Sequence[int]
) -> dict[int, dict[str, tuple[int, int]]]:
    """block -> pair address -> (reserve0, reserve1) as of the end of that block."""
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for chunk in _chunks(blocks):
        calls = [
            ("eth_call", [{"to": pair, "data": GET_RESERVES}, hex(block)])
            for block in chunk
            for pair in pairs
        ]
        results = iter(batch_call(rpc_url, calls))
        for block in chunk:
            row = out.setdefault(block, {})
            for pair in pairs:
                word = bytes.fromhex(next(results).removeprefix("0x"))
                row[pair] = (int.from_bytes(word[0:32], "big"), int.from_bytes(word[32:64], "big"))
    return out


def fetch_base_fees(rpc_url: str, blocks: Sequence[int]) -> dict[int, int]:
    """block -> baseFeePerGas (wei)."""
    out: dict[int, int] = {}
    for chunk in _chunks(blocks):
        headers = batch_call(rpc_url, [("eth_getBlockByNumber", [hex(b), False]) for b in chunk])
        for block, header in zip(chunk, headers, strict=True):
            out[block] = int(header.get("baseFeePerGas") or "0x0", 16)
    return out


def fetch_tx_blocks(rpc_url: str, tx_hashes: Sequence[str]) -> dict[str, tuple[int, bool]]:
    """tx hash -> (block it was mined in, succeeded); unmined hashes are left out."""
    out: dict[str, tuple[int, bool]] = {}
    for i in range(0, len(tx_hashes), 200):
        chunk = tx_hashes[i : i + 200]
        receipts = batch_call(rpc_url, [("eth_getTransactionReceipt", [h]) for h in chunk])
        for h, r in zip(chunk, receipts, strict=True):
            if r is not None:
                out[h] = (int(r["blockNumber"], 16), int(r["status"], 16) == 1)
    return out
