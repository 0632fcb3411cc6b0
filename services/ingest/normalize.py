"""Turn raw JSON-RPC objects into pipeline messages (pure: no I/O, unit-testable)."""

from __future__ import annotations

from typing import Any

from mev_common.messages import Block, PendingTx


def _int(value: Any) -> int:
    if value is None:
        return 0
    return int(value, 16) if isinstance(value, str) else int(value)


def block_from_rpc(chain_id: int, raw: dict[str, Any], reorg: bool = False) -> Block:
    """An `eth_getBlockByNumber` result (hashes only) as a Block message."""
    return Block(
        chain_id=chain_id,
        number=_int(raw["number"]),
        hash=raw["hash"],
        parent_hash=raw["parentHash"],
        timestamp=_int(raw["timestamp"]),
        base_fee_per_gas=_int(raw.get("baseFeePerGas")),
        gas_limit=_int(raw.get("gasLimit")),
        gas_used=_int(raw.get("gasUsed")),
        reorg=reorg,
    )


def pending_from_rpc(chain_id: int, raw: dict[str, Any]) -> PendingTx:
    """An `eth_getTransactionByHash` result of a pending tx as a PendingTx message."""
    fields: dict[str, Any] = {
        "chain_id": chain_id,
        "hash": raw["hash"],
        "from": raw["from"],
        "to": raw.get("to"),
        "nonce": _int(raw["nonce"]),
        "value": _int(raw.get("value")),
        "gas": _int(raw.get("gas")),
        "input": raw.get("input") or raw.get("data") or "0x",
    }
    for key, name in (
        ("gasPrice", "gas_price"),
        ("maxFeePerGas", "max_fee_per_gas"),
        ("maxPriorityFeePerGas", "max_priority_fee_per_gas"),
    ):
        if raw.get(key) is not None:
            fields[name] = _int(raw[key])
    return PendingTx.model_validate(fields)
