"""After a gap in the block stream detect forgets, in its book and in a replica's read-ahead,
exactly the pending swaps whose nonce their sender has used at the head (services/detect/gap.py);
when the nonces cannot be read, it forgets nothing (a still-pending swap is what keeps a backrun
from being published into it)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mev_common.chain.jsonrpc import RpcError
from mev_common.envelope import Envelope
from mev_common.messages import Block, PendingTx

from services.detect.gap import reload_after_gap
from services.detect.service import Detector
from tests.support.replica_detect import recording_detector, varied_swaps
from tests.unit.detect.test_replica_decisions import envelopes

GAP = Block(chain_id=31337, number=3, hash="0x" + "99" * 32, parent_hash="0x" + "98" * 32,
            timestamp=1_000, base_fee_per_gas=10**9)  # fmt: skip


class Node:
    """Each sender's transaction count at the head, as one JSON-RPC batch answers it."""

    def __init__(self, counts: dict[str, int], fail: bool = False) -> None:
        self.counts, self.fail, self.batches = counts, fail, []  # type: ignore[var-annotated]
        self.detect_loaded: list[bool] = []  # whether detect judged pending swaps meanwhile
        self.detector: Detector | None = None

    async def call_batch(self, calls: list[tuple[str, list[Any]]], chunk: int = 100) -> list[Any]:
        self.batches.append(calls)
        assert self.detector is not None
        self.detect_loaded.append(self.detector.loaded)
        if self.fail:
            raise RpcError("batch", "every endpoint failed")
        assert {m for m, _ in calls} == {"eth_getTransactionCount"}
        return [
            hex(self.counts[p[0]]) if p[0] in self.counts else RpcError("x", "no") for _, p in calls
        ]


async def gapped(node: Node) -> tuple[Detector, list[PendingTx], list[PendingTx]]:
    """A replica that booked 8 swaps at head 1 and read 8 more ahead; then block 3 comes (2 was
    missed): the gap reloads it there."""
    found, _, deployment = recording_detector(2)
    envs = envelopes(varied_swaps(deployment, 16, seed=7))
    assert found.peers is not None
    for env in envs:
        await found.peers.on_read(env)
    for env in envs[:8]:
        await found.on_pending(env)
    found.rpc, node.detector = node, found  # type: ignore[assignment]

    async def reload() -> None:  # the pools at the head: what the gap path always did
        found.registry.block_number, found.registry.block_hash = GAP.number, GAP.hash

    found.load = reload  # type: ignore[method-assign]
    booked = [e.message for e in envs[:8] if e.message.hash in found.pending.entries]
    ahead = [e.message for e in envs[8:]]
    await reload_after_gap(found, GAP)
    return found, booked, ahead


async def test_the_swaps_the_missed_blocks_mined_are_forgotten_the_pending_ones_kept() -> None:
    _, _, deployment = recording_detector()
    txs = [e.message for e in envelopes(varied_swaps(deployment, 16, seed=7))]
    # every other sender mined its swaps at the head; one sender's count is not read
    counts = {t.sender: t.nonce + 1 for t in txs[::2]}
    unread = txs[1].sender
    counts.pop(unread, None)
    node = Node(counts)
    found, booked, ahead = await gapped(node)
    assert len(node.batches) == 1  # one batch, every sender of the book and the read-ahead once
    asked = [p[0] for _, p in node.batches[0]]
    assert sorted(asked) == asked == sorted({t.sender for t in booked + ahead})
    mined = {t.hash for t in txs if 0 <= t.nonce < counts.get(t.sender, 0)}
    assert mined and set(found.pending.entries) == {t.hash for t in booked} - mined
    assert found.peers is not None
    assert {s.tx_hash for s in found.peers.ahead.queue or ()} == {t.hash for t in ahead} - mined
    assert found.head == GAP  # the reload's snapshot is at the gap block: our head
    assert node.detect_loaded == [False] and found.loaded  # no swap judged before the check


async def test_nonces_unread_forget_nothing() -> None:
    found, booked, ahead = await gapped(Node({}, fail=True))
    assert found.loaded
    assert set(found.pending.entries) == {t.hash for t in booked}
    assert found.peers is not None
    assert {s.tx_hash for s in found.peers.ahead.queue or ()} == {t.hash for t in ahead}


async def test_the_first_live_block_after_a_start_checks_the_book_once() -> None:
    """A restarted detect is handed the swaps its last run left unacked: some were mined in
    blocks its snapshot holds, whose logs the book never sees. The first live block checks
    the book's nonces in the background (one batch); the next block does not."""
    found, _, deployment = recording_detector()
    envs = envelopes(varied_swaps(deployment, 8, seed=9))
    txs = [e.message for e in envs]
    for env in envs:
        await found.on_pending(env)
    booked = set(found.pending.entries)
    counts = {t.sender: t.nonce + 1 for t in txs[:4]}  # the first four are on chain
    node = Node(counts)
    found.rpc, node.detector = node, found  # type: ignore[assignment]
    parent = found.registry.block_hash
    for number in (2, 3):
        block = GAP.model_copy(
            update={"number": number, "hash": "0x" + f"{number:02d}" * 32, "parent_hash": parent}
        )
        await found.on_block(Envelope(block, "blocks", block.hash, block.hash, time.time_ns()))
        await asyncio.gather(*found.checks)
        parent = block.hash
    assert found.registry.block_number == 3 and len(node.batches) == 1
    assert node.detect_loaded == [True]  # in the background: pending swaps went on meanwhile
    mined = {t.hash for t in txs[:4]}
    assert booked & mined and set(found.pending.entries) == booked - mined
