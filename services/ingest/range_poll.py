"""Following the head under an RPC call budget (HyperEVM): one batch per poll, one message.

HyperEVM's official RPC allows about 100 calls a minute per IP and makes 60 blocks a minute, so
a header and a log query per block (120 calls) is already over it. Under a budget ingest polls
every few blocks with one JSON-RPC batch: the latest header and `eth_getLogs` from the block
after the last one published up to `latest`. It publishes one Block for the head carrying the
logs of every block since the previous message (`Block.logs_from`, each log naming its block).
Logs of a block newer than the header (one landed between the two calls) are left for the
next poll, which starts after the header's block: nothing is lost or published twice.

What it gives up: the headers of the blocks in between (their timestamps and base fees) and
reorg detection by parent hash across them; HyperEVM's blocks are final (HyperBFT), and a
block stream that goes backwards is still refused. Pure: the service does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mev_common.chain.block_logs import logs_in_range
from mev_common.chain.rpc_blocks import block_from_rpc, rpc_int
from mev_common.messages import Block

from services.ingest.logs import LOG_TOPICS

HEAD_CALL = ("eth_getBlockByNumber", ["latest", False])
SAFE_SPAN = 40  # blocks per eth_getLogs, under HyperEVM's 50 with room for blocks that land


def poll_interval_s(per_minute: float | None, block_time_s: float, calls_per_poll: int) -> float:
    """How often to poll so that 90% of `per_minute` pays for the polls (never faster than
    half a block; every half block when there is no budget)."""
    fastest = max(0.05, block_time_s / 2)
    if per_minute is None:
        return fastest
    return max(fastest, 60.0 * calls_per_poll / (0.9 * per_minute))


@dataclass
class RangePoller:
    chain_id: int
    published: int | None = None  # the last block whose logs went out
    known_head: int | None = None

    def calls(self, blocks_elapsed: float) -> list[tuple[str, list[Any]]]:
        """The batch for this poll: the head, and the logs since the last published block
        when the span surely fits HyperEVM's 50-block limit (else the head alone first)."""
        if self.published is None or self.known_head is None:
            return [HEAD_CALL]
        if self.known_head + blocks_elapsed + 1 - self.published > SAFE_SPAN:
            return [HEAD_CALL]
        query = {"fromBlock": hex(self.published + 1), "toBlock": "latest", "topics": [LOG_TOPICS]}
        return [HEAD_CALL, ("eth_getLogs", [query])]

    def catch_up_calls(self) -> list[tuple[str, list[Any]]]:
        """After a head-only poll: the logs to publish with that head (at most SAFE_SPAN
        blocks; a longer gap starts over there, and consumers reload on the gap)."""
        head = self.known_head
        assert head is not None
        start = head if self.published is None else max(self.published + 1, head - SAFE_SPAN + 1)
        query = {"fromBlock": hex(start), "toBlock": hex(head), "topics": [LOG_TOPICS]}
        return [("eth_getLogs", [query])]

    def see_head(self, raw_head: dict[str, Any]) -> bool:
        """Record the head of a head-only poll; True when logs must be fetched for it."""
        number = rpc_int(raw_head["number"])
        self.known_head = number
        return self.published is None or number > self.published

    def block(self, raw_head: dict[str, Any], raw_logs: list[dict[str, Any]]) -> Block | None:
        """The message for this poll (None: no new block). `raw_logs` may reach past the
        head (a block landed inside the batch): those wait for the next poll."""
        number = rpc_int(raw_head["number"])
        self.known_head = max(number, self.known_head or number)
        if self.published is not None and number <= self.published:
            return None
        first = (
            number if self.published is None else max(self.published + 1, number - SAFE_SPAN + 1)
        )
        logs = logs_in_range(raw_logs, first, number)
        block = block_from_rpc(self.chain_id, raw_head)
        self.published = number
        return block.model_copy(update={"logs": logs, "logs_from": first})
