"""JSON-RPC block results as Block messages: the one block parser ingest and simulate share
(the schema is mev_common.messages; this is how the node's answer becomes one)."""

from __future__ import annotations

from typing import Any

from mev_common.messages import Block


def rpc_int(value: Any) -> int:
    """A JSON-RPC quantity ("0x1a", or already an int); a missing one is 0."""
    if value is None:
        return 0
    return int(value, 16) if isinstance(value, str) else int(value)


def block_from_rpc(chain_id: int, raw: dict[str, Any], reorg: bool = False) -> Block:
    """An `eth_getBlockByNumber` result (hashes only) as a Block message: the one block parser
    ingest and simulate share."""
    return Block(
        chain_id=chain_id,
        number=rpc_int(raw["number"]),
        hash=raw["hash"],
        parent_hash=raw["parentHash"],
        timestamp=rpc_int(raw["timestamp"]),
        base_fee_per_gas=rpc_int(raw.get("baseFeePerGas")),
        gas_limit=rpc_int(raw.get("gasLimit")),
        gas_used=rpc_int(raw.get("gasUsed")),
        reorg=reorg,
    )
