"""Raw `eth_getLogs` entries as messages.Log, the one parser ingest and simulate share."""

from __future__ import annotations

from typing import Any

from mev_common.chain.rpc_blocks import rpc_int
from mev_common.messages import Log


def log_of(raw: dict[str, Any]) -> Log:
    return Log(
        address=raw["address"],
        topics=raw["topics"],
        data=raw["data"],
        log_index=rpc_int(raw["logIndex"]),
        tx_hash=raw["transactionHash"],
    )


def logs_in_range(raw_logs: list[dict[str, Any]], first: int, last: int) -> list[Log]:
    """The logs of blocks first..last (removed ones dropped), in chain order, each naming its
    block: what one message spanning several blocks carries (messages.Block.logs_from)."""
    keep = []
    for raw in raw_logs:
        number = rpc_int(raw.get("blockNumber"))
        if not raw.get("removed") and first <= number <= last:
            keep.append(log_of(raw).model_copy(update={"block_number": number}))
    return sorted(keep, key=lambda lg: (lg.block_number or 0, lg.log_index))
