"""State reads at `latest` that know which block they read: one JSON-RPC batch, checked.

HyperEVM's RPC serves state (eth_call, eth_getStorageAt, eth_getBalance, ...) only at
`latest`, so a read cannot name its block. Asked alone, two reads may come from two blocks and
a snapshot built from them would silently mix them. Here every read goes into one batch
between `eth_getBlockByNumber("latest")` (first) and `eth_blockNumber` (last): the node serves
a batch in order, so if both name the same block every read between them is at that block.
If a block landed in between, the whole batch is discarded and asked again (BlockMoved after
`tries`), never used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mev_common.chain.jsonrpc import RpcError

BatchCall = Callable[[list[tuple[str, list[Any]]]], Awaitable[list[Any]]]
HEAD: tuple[str, list[Any]] = ("eth_getBlockByNumber", ["latest", False])
NUMBER: tuple[str, list[Any]] = ("eth_blockNumber", [])


class BlockMoved(RpcError):
    """Every try saw a block land inside the batch: no consistent read was made."""

    def __init__(self, tries: int) -> None:
        super().__init__("batch", f"a new block landed inside the batch {tries} times")


@dataclass(frozen=True)
class LatestRead:
    """`results` (in call order; failed entries are RpcError instances) all at `head`."""

    head: dict[str, Any]
    results: list[Any]

    @property
    def number(self) -> int:
        return int(self.head["number"], 16)

    @property
    def hash(self) -> str:
        return str(self.head["hash"])


def checked(replies: Sequence[Any]) -> LatestRead | None:
    """Pure: the batch `[HEAD, *reads, NUMBER]`'s replies as a LatestRead, or None when a
    block landed between the first and the last call (or either of them failed)."""
    head, number = replies[0], replies[-1]
    if not isinstance(head, dict) or not isinstance(number, str):
        return None
    if int(head["number"], 16) != int(number, 16):
        return None
    return LatestRead(head, list(replies[1:-1]))


async def read_at_latest(
    call_batch: BatchCall, calls: Sequence[tuple[str, list[Any]]], tries: int = 4
) -> LatestRead:
    """`calls` (each with its block parameter `latest`) in one checked batch."""
    for _ in range(tries):
        read = checked(await call_batch([HEAD, *calls, NUMBER]))
        if read is not None:
            return read
    raise BlockMoved(tries)


def at_latest(to: str, data: str) -> tuple[str, list[Any]]:
    """An eth_call at `latest` (the only tag HyperEVM serves)."""
    return "eth_call", [{"to": to, "data": data}, "latest"]
