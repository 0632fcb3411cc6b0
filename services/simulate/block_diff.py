"""A block's storage changes from one `debug_traceBlockByNumber` (prestateTracer, diffMode).

Uniswap V3 pool storage after a swap (slot0, liquidity, fee growth, crossed ticks' outside
values, oracle observations, the pool's token balances) cannot be rebuilt from its logs alone,
and gas depends on every written slot being zero or not. The node's own diff gives each changed
slot's value after the block, so the warm EVM can take them exactly (warm.WarmEvm.apply_diff)
instead of reforking. One call per block with V3 events, off the hot path.

diffMode, per transaction: `post` holds the changed fields only; a slot present in `pre` and
absent from `post` was cleared to zero (also when its account is absent from `post`: it was
destroyed). A contract created in the block appears in `post` only, with its code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TRACE_METHOD = "debug_traceBlockByNumber"
TRACE_CONFIG = {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}


@dataclass(frozen=True)
class NewAccount:
    balance: int
    nonce: int
    code: bytes


@dataclass
class BlockDiff:
    """The block's net storage writes (lower-case address, slot) -> value after the block, in
    the order the block made them, and the contracts it created."""

    number: int
    writes: dict[tuple[str, int], int] = field(default_factory=dict)
    created: dict[str, NewAccount] = field(default_factory=dict)


def trace_params(number: int) -> list[Any]:
    return [hex(number), TRACE_CONFIG]


def parse_block_diff(number: int, traces: list[dict[str, Any]]) -> BlockDiff:
    """The block's diff from the node's per-transaction traces; ValueError naming what is
    missing when a trace is not a diffMode prestate (e.g. a node ignoring diffMode)."""
    diff = BlockDiff(number)
    for i, entry in enumerate(traces):
        result = entry.get("result") if isinstance(entry, dict) else None
        if not isinstance(result, dict) or "post" not in result or "pre" not in result:
            raise ValueError(f"block {number} tx {i}: no diffMode result (pre/post) in the trace")
        pre, post = result["pre"], result["post"]
        for address, before in pre.items():
            after = post.get(address, {})
            for slot in before.get("storage", {}):
                if slot not in after.get("storage", {}):
                    diff.writes[(address.lower(), int(slot, 16))] = 0
        for address, after in post.items():
            lower = address.lower()
            for slot, value in after.get("storage", {}).items():
                diff.writes[(lower, int(slot, 16))] = int(value, 16)
            if address not in pre and after.get("code"):
                code = bytes.fromhex(after["code"].removeprefix("0x"))
                balance = int(after.get("balance", "0x0"), 16)
                diff.created[lower] = NewAccount(balance, int(after.get("nonce", 0)), code)
    return diff
