"""Turn raw JSON-RPC objects into pipeline messages (pure: no I/O, unit-testable)."""

from __future__ import annotations

from typing import Any

from mev_common.chain.rpc_blocks import block_from_rpc as block_from_rpc  # the one block parser
from mev_common.chain.rpc_blocks import rpc_int as _int
from mev_common.messages import PendingTx


def pending_from_rpc(chain_id: int, raw: dict[str, Any], seen_on: str | None = None) -> PendingTx:
    """An `eth_getTransactionByHash` result of a pending tx as a PendingTx message; `seen_on`
    names the endpoint that served it (the node a backrun of it is sent to)."""
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
    if seen_on is not None:
        fields["seen_on"] = seen_on
    return PendingTx.model_validate(fields)
