"""Exact pool state and base fees at past blocks, read from the node in JSON-RPC batches.

Why eth_call at a block number: the oracle judges each block's end state, not whatever the
chain looks like when it gets round to it; one batch per few blocks keeps anvil's load small
(the reads happen after the run, so they never compete with the bot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

GET_RESERVES = "0x0902f1ac"  # getReserves()
SYNC_TOPIC = "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"  # Sync(u112,u112)
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


class SyncLog(NamedTuple):
    """A pair's reserves right after one transaction of a block (Uniswap V2 `Sync`)."""

    tx_index: int
    log_index: int
    pair: str
    reserves: tuple[int, int]


class Landing(NamedTuple):
    block: int
    tx_index: int
    effective_gas_price: int


def fetch_logs(
    rpc_url: str, pairs: Sequence[str], topic: str, first: int, last: int
) -> list[tuple[dict[str, Any], str, bytes]]:
    """(log, pair as spelled in `pairs`, data bytes) of one event of `pairs`, first..last."""
    by_lower = {p.lower(): p for p in pairs}
    flt = {"fromBlock": hex(first), "toBlock": hex(last), "address": list(pairs),
           "topics": [topic]}  # fmt: skip
    (logs,) = batch_call(rpc_url, [("eth_getLogs", [flt])])
    return [
        (log, by_lower[log["address"].lower()], bytes.fromhex(log["data"].removeprefix("0x")))
        for log in logs
    ]


def words(data: bytes, count: int) -> list[int]:
    """The first `count` 32-byte big-endian words of ABI-encoded data."""
    return [int.from_bytes(data[32 * i : 32 * i + 32], "big") for i in range(count)]


def fetch_syncs(rpc_url: str, pairs: Sequence[str], block: int) -> list[SyncLog]:
    """Every Sync of `pairs` in one block, in execution order."""
    out = []
    for log, pair, data in fetch_logs(rpc_url, pairs, SYNC_TOPIC, block, block):
        r0, r1 = words(data, 2)
        out.append(
            SyncLog(int(log["transactionIndex"], 16), int(log["logIndex"], 16), pair, (r0, r1))
        )
    return sorted(out, key=lambda s: (s.tx_index, s.log_index))


def fetch_landings(rpc_url: str, tx_hashes: Sequence[str]) -> dict[str, Landing]:
    """tx hash -> where it was mined (block, index) and the gas price it paid."""
    if not tx_hashes:
        return {}
    receipts = batch_call(rpc_url, [("eth_getTransactionReceipt", [h]) for h in tx_hashes])
    return {
        h: Landing(
            int(r["blockNumber"], 16),
            int(r["transactionIndex"], 16),
            int(r.get("effectiveGasPrice") or "0x0", 16),
        )
        for h, r in zip(tx_hashes, receipts, strict=True)
        if r is not None
    }


def reserves_before_tx(
    end_of_previous: Mapping[str, tuple[int, int]], syncs: Sequence[SyncLog], tx_index: int
) -> dict[str, tuple[int, int]]:
    """Every pair's reserves just before transaction `tx_index` of a block: the previous
    block's end state with the block's earlier Syncs applied in order."""
    state = dict(end_of_previous)
    for sync in syncs:
        if sync.tx_index >= tx_index:
            break
        state[sync.pair] = sync.reserves
    return state
