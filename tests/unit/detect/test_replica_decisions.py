"""Detect replicas, each searching its share of the pending swaps, reading the whole mempool
ahead (services/detect/peers.py) and asking the others about the swaps they backran
(services/detect/peer_bets.py), decide what one detect decides on the same stream, V3 victims
included: the same backruns left standing, crowded/queued and withdrawn counts, however far
ahead the readers are and whichever replica decides first. (The same on a real nats-server:
tests/integration/test_detect_replicas.py.)"""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from mev_common.envelope import Envelope
from mev_common.messages import Block, PendingTx, decode

from bench.swaps import V3_SHARE
from services.detect import peer_bets
from services.detect.service import Detector
from tests.support.replica_detect import (
    Decisions,
    RecordingBus,
    decisions,
    link,
    recording_detector,
    varied_swaps,
)

N = 400


def envelopes(payloads: list[tuple[str, bytes]]) -> list[Envelope[PendingTx]]:
    now = time.time_ns()
    return [
        Envelope(decode(PendingTx, p), "mempool", h, h, now, seq=k + 1)
        for k, (h, p) in enumerate(payloads)
    ]


async def one_detect(envs: list[Envelope[PendingTx]]) -> Decisions:
    found, bus, _ = recording_detector()
    for env in envs:
        await found.on_pending(env)
    return decisions([(found, bus)])


async def two_replicas(envs: list[Envelope[PendingTx]], lead: int, seed: int) -> Decisions:
    """Replica k searches the swaps the shared consumer hands it (a seeded split); both readers
    read every swap, `lead` swaps ahead of the triggers."""
    pairs: list[tuple[Detector, RecordingBus]] = [recording_detector(2)[:2] for _ in range(2)]
    link([found for found, _ in pairs])
    rng = random.Random(seed)
    read = 0
    for k, env in enumerate(envs):
        while read < min(len(envs), k + 1 + lead):
            for found, _ in pairs:
                assert found.peers is not None
                await found.peers.on_read(envs[read])
            read += 1
        await pairs[rng.randrange(2)][0].on_pending(env)
    for found, _ in pairs:
        assert found.peers is not None and found.peers.behind == 0
    return decisions(pairs)


def test_two_replicas_decide_what_one_detect_decides() -> None:
    _, _, deployment = recording_detector()
    # the devnet flow's V2:V3 mix: a V3 victim's backrun is often crowded by a swap another
    # replica backran (h86 pinned this to V2 victims: 1 crowded / 1 opportunity apart)
    envs = envelopes(varied_swaps(deployment, N, seed=21, v3_share=V3_SHARE))
    single = asyncio.run(one_detect(envs))
    # the input exercises every decision
    assert single.crowded > 50 and single.withdrawn > 50 and len(single.standing) >= 3
    for lead, seed in ((0, 1), (1, 2), (8, 3), (64, 4), (N, 5)):
        assert asyncio.run(two_replicas(envs, lead, seed)) == single, f"lead {lead}"


async def racing_replicas(
    envs: list[Envelope[PendingTx]], n: int, seed: int
) -> tuple[Decisions, list[Detector]]:
    """n replicas, their readers through the whole stream first, each deciding its share (a
    seeded split) in its own task: a replica runs on until it must wait for a peer's decision,
    so it judges a victim before the replica holding a swap ahead of it has decided that swap."""
    pairs: list[tuple[Detector, RecordingBus]] = [recording_detector(2)[:2] for _ in range(n)]
    link([found for found, _ in pairs])
    for env in envs:
        for found, _ in pairs:
            assert found.peers is not None
            await found.peers.on_read(env)
    rng = random.Random(seed)
    shares: list[list[Envelope[PendingTx]]] = [[] for _ in range(n)]
    for env in envs:
        shares[rng.randrange(n)].append(env)

    async def run(found: Detector, share: list[Envelope[PendingTx]]) -> None:
        for env in share:
            await found.on_pending(env)

    await asyncio.gather(
        *(run(found, share) for (found, _), share in zip(pairs, shares, strict=True))
    )
    return decisions(pairs), [found for found, _ in pairs]


def test_replicas_decide_as_one_detect_when_a_peer_decides_a_swap_ahead_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The order that matters: B judged before the replica holding A (ahead of B, backrun
    by it) has decided A. The question waits, parked there, and is answered when A is decided
    (`answered_later` > 0); none times out (each would judge B crowded: `unanswered`). A third
    replica's task may run long before the one holding A gets its turn: the wait is not what
    is tested, so it is long here (a cycle of waits would show as `unanswered`, late)."""
    monkeypatch.setattr(peer_bets, "ASK_WAIT_S", 30.0)
    _, _, deployment = recording_detector()
    envs = envelopes(varied_swaps(deployment, N, seed=21, v3_share=V3_SHARE))
    single = asyncio.run(one_detect(envs))
    for n, seed in ((2, 6), (3, 7)):
        got, replicas = asyncio.run(racing_replicas(envs, n, seed))
        assert got == single, f"{n} replicas"
        bets = [d.peers.bets for d in replicas if d.peers is not None]
        assert sum(b.answered_later for b in bets) > 0 and sum(b.asked for b in bets) > 0
        assert sum(b.unanswered for b in bets) == 0 and sum(b.rejected for b in bets) == 0


def test_a_reader_whose_stream_started_over_forgets_what_it_held() -> None:
    """Sequences that go back (a server lost its store, the stream restarts at 1) would
    otherwise queue behind the old ones, never booked: the read-ahead starts over too."""
    found, _, deployment = recording_detector(2)
    assert found.peers is not None
    envs = envelopes(varied_swaps(deployment, 6, seed=5))

    async def read() -> None:
        assert found.peers is not None
        for env in envs[3:]:
            await found.peers.on_read(env)  # seqs 4..6
        await found.peers.on_read(envs[0])  # seq 1 again: a new stream
        await found.peers.reach(1)

    asyncio.run(read())
    assert found.peers.ahead.read_seq == 1 and len(found.peers.ahead) == 0
    assert envs[0].message.hash in found.pending.entries
    assert not any(e.message.hash in found.pending.entries for e in envs[3:])


def _stamped(det: Detector, stamp: float) -> Envelope[Block]:
    """The block after `det`'s head, stamped (and seen by ingest) at `stamp`."""
    assert det.head is not None
    n = det.head.number + 1
    block = det.head.model_copy(
        update={"number": n, "hash": "0x" + f"{n:064x}", "parent_hash": det.head.hash,
                "timestamp": int(stamp), "logs": []}
    )  # fmt: skip
    return Envelope(block, "blocks", block.hash, block.hash, int(stamp * 1e9))


def test_a_replica_keeps_a_swap_read_at_a_lagging_head_as_one_detect_does() -> None:
    """Detect's head is 5 s (blocks) behind the chain's clock when a swap comes (the block
    stream catching up after NATS came back): one detect books it at the chain's head by the
    clock, so the backlog's four blocks do not age it out; a replica whose reader read it (the
    other replica searched it) books it the same, so its next trigger is judged with it.
    Booked at the reader's head, it left the read-ahead at the fourth block."""
    one, _, deployment = recording_detector()
    replica, _, _ = recording_detector(2)
    assert replica.peers is not None
    envs = envelopes(varied_swaps(deployment, 2, seed=5))
    stale = time.time() - 5
    for det in (one, replica):
        det.recheck, det.head_seen_s = False, stale  # ingest saw our head 5 s ago

    async def main() -> None:
        assert replica.peers is not None
        await one.on_pending(envs[0])
        await replica.peers.on_read(envs[0])
        for k in range(1, 5):  # mined (and seen by ingest) before the swap came
            for det in (one, replica):
                await det.on_block(_stamped(det, stale + k))
        await replica.peers.on_read(envs[1])
        await replica.peers.reach(envs[1].seq)  # its trigger is searched here: books what is ahead

    asyncio.run(main())
    swap = envs[0].message.hash
    assert one.head is not None and one.head.number == 5
    assert one.pending.entries[swap].seen_block == 4 + 1  # booked at the chain's head less one
    assert replica.pending.entries[swap].seen_block == one.pending.entries[swap].seen_block
