"""The pipeline table of DESIGN §2: subjects, streams and consumers, in one place.

Services never spell a subject themselves; they ask this module, so a rename is one edit and
`nats sub 'mev.<chain>.>'` always shows the whole pipeline of one chain.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from mev_common.settings import Settings

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_TRACE = "Mev-Trace"
HEADER_SEEN_NS = "Mev-Seen-Ns"
HEADER_ERROR = "Mev-Error"
HEADER_STAGE = "Mev-Stage"
HEADER_HANDED_BACK = "Mev-Handed-Back"  # a hand-back's copy: the first message's Nats-Msg-Id

CONTROL_BUCKET = "mev-control"


def blocks(chain_id: int) -> str:
    return f"mev.{chain_id}.blocks"


def mempool(chain_id: int) -> str:
    return f"mev.{chain_id}.mempool"


def opportunities(chain_id: int, strategy: str) -> str:
    return f"mev.{chain_id}.opportunities.{strategy}"


def all_opportunities(chain_id: int) -> str:
    return f"mev.{chain_id}.opportunities.>"


def bundles(chain_id: int) -> str:
    return f"mev.{chain_id}.bundles"


def outcomes(chain_id: int) -> str:
    return f"mev.{chain_id}.outcomes"


def withdrawals(chain_id: int) -> str:
    """Core NATS (no stream): a lost withdrawal costs at most the revert it would have saved."""
    return f"mev.{chain_id}.withdrawals"


def detect_peers(chain_id: int, kind: str) -> str:
    """Core NATS between detect replicas (`questions`, `answers`: services/detect/peer_bets.py)."""
    return f"mev.{chain_id}.detect.{kind}"


def dead(chain_id: int, stage: str) -> str:
    return f"mev.{chain_id}.dead.{stage}"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_s: float
    max_msgs: int = -1
    discard: DiscardPolicy = DiscardPolicy.OLD
    duplicate_window_s: float = 120.0
    replicas: int = 1

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=self.max_age_s,
            max_msgs=self.max_msgs,
            discard=self.discard,
            duplicate_window=min(self.duplicate_window_s, self.max_age_s),
            num_replicas=self.replicas,
        )


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer shared by the replicas of one stage."""

    stream: str
    durable: str
    filter_subject: str
    max_ack_pending: int


def stream_specs(settings: Settings) -> list[StreamSpec]:
    """All streams of DESIGN §2. Wildcard over chains: one NATS may serve several chains.
    Each has `nats.replicas` replicas (3 on a three-node cluster)."""
    replicas = settings.nats.replicas
    specs = [
        StreamSpec(
            "MEMPOOL",
            ("mev.*.mempool",),
            max_age_s=settings.mempool.max_age_s,
            max_msgs=settings.mempool.max_pending_transactions,
            discard=DiscardPolicy.OLD,
        ),
        StreamSpec("BLOCKS", ("mev.*.blocks",), max_age_s=24 * 3600),
        StreamSpec("OPPORTUNITIES", ("mev.*.opportunities.>",), max_age_s=5 * 60),
        StreamSpec("BUNDLES", ("mev.*.bundles",), max_age_s=3600),
        StreamSpec("OUTCOMES", ("mev.*.outcomes",), max_age_s=30 * 24 * 3600),
        StreamSpec("DEAD", ("mev.*.dead.>",), max_age_s=7 * 24 * 3600),
    ]
    return [dataclasses.replace(spec, replicas=replicas) for spec in specs]


def consumer_specs(settings: Settings) -> dict[str, ConsumerSpec]:
    """The durable consumers by stage. Detect's BLOCKS reader is an ordered consumer per
    replica (every replica needs full pool state), so it is not listed here."""
    chain = settings.chain.chain_id
    concurrency = settings.services.consume_concurrency
    return {
        "detect": ConsumerSpec("MEMPOOL", f"detect-{chain}", mempool(chain), concurrency * 4),
        "simulate": ConsumerSpec(
            "OPPORTUNITIES",
            f"simulate-{chain}",
            all_opportunities(chain),
            settings.performance.simulation_concurrency * 4,
        ),
        "submit": ConsumerSpec("BUNDLES", f"submit-{chain}", bundles(chain), concurrency),
    }
