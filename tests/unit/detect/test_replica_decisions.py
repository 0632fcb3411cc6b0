"""Two detect replicas, each searching its share of the pending swaps and reading the whole
mempool ahead (services/detect/peers.py), decide what one detect decides on the same stream:
the same backruns left standing, crowded/queued and withdrawn counts, however far ahead the
readers are. (The same on a real nats-server: tests/integration/test_detect_replicas.py.)"""

from __future__ import annotations

import asyncio
import random
import time

from mev_common.envelope import Envelope
from mev_common.messages import PendingTx, decode

from services.detect.service import Detector
from tests.support.replica_detect import (
    Decisions,
    RecordingBus,
    decisions,
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
    envs = envelopes(varied_swaps(deployment, N, seed=21))
    single = asyncio.run(one_detect(envs))
    # the input exercises every decision
    assert single.crowded > 50 and single.withdrawn > 50 and len(single.standing) >= 3
    for lead, seed in ((0, 1), (1, 2), (8, 3), (64, 4), (N, 5)):
        assert asyncio.run(two_replicas(envs, lead, seed)) == single, f"lead {lead}"


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
