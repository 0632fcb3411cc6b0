"""Pool events in a block (Uniswap V2 and V3): which topics we fetch and how raw logs become
messages."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from mev_common.amm.v3_book import V3_LOG_TOPICS
from mev_common.chain.block_logs import log_of
from mev_common.messages import Log

SYNC_TOPIC = "0x" + keccak(text="Sync(uint112,uint112)").hex()
SWAP_TOPIC = "0x" + keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)").hex()
# Topic filter only (no address list): every V2-style pool's events, so pools created after
# start are seen too; detect keeps the ones it tracks. V3 pools: Swap, Mint, Burn, Initialize
# (what keeps their state, amm/v3_book.py).
LOG_TOPICS = [SYNC_TOPIC, SWAP_TOPIC, *V3_LOG_TOPICS]


def logs_for_block(raw_logs: list[dict[str, Any]], block_hash: str) -> list[Log]:
    """The block's logs in log-index order (removed ones dropped)."""
    keep = [r for r in raw_logs if not r.get("removed") and r.get("blockHash") == block_hash]
    return sorted((log_of(r) for r in keep), key=lambda lg: lg.log_index)


def group_logs(raw_logs: list[dict[str, Any]], block_hashes: set[str]) -> dict[str, list[Log]]:
    """Logs of a block range split by block (only the blocks we publish)."""
    out: dict[str, list[Log]] = {h: [] for h in block_hashes}
    for raw in raw_logs:
        block_hash = raw.get("blockHash")
        if block_hash in out and not raw.get("removed"):
            out[block_hash].append(log_of(raw))
    for logs in out.values():
        logs.sort(key=lambda lg: lg.log_index)
    return out
