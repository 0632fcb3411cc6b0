"""Streams as declared: what every replica may call at start without changing a thing."""

from __future__ import annotations

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from mev_common.subjects import StreamSpec


async def ensure_streams(js: JetStreamContext, specs: list[StreamSpec]) -> None:
    """Create or update every stream: idempotent, safe for every replica to call at start.
    A stream that exists as specified is only read: with bus permissions on, services may
    not create or change streams (the operator declares them, see nats_auth)."""
    for spec in specs:
        cfg = spec.config()
        try:
            have = (await js.stream_info(spec.name)).config
        except nats.js.errors.NotFoundError:
            await js.add_stream(cfg)
            continue
        if _stream_differs(have, cfg):
            await js.update_stream(cfg)


NO_PLACEMENT = 10005  # "no suitable peers for placement": the meta group lacks the replicas


def cluster_settling(exc: BaseException) -> bool:
    """A JetStream refusal that a cluster still forming or electing gives, not a real one:
    the API times out or finds no responder while a leader is elected, answers 503 while
    JetStream is unavailable, and cannot place an R3 stream until the meta leader knows
    enough peers (a fresh 3-node cluster under load: seen in CI as 10005)."""
    if isinstance(exc, (TimeoutError, nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        return True
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return True
    return isinstance(exc, nats.js.errors.APIError) and exc.err_code == NO_PLACEMENT


def _stream_differs(have: StreamConfig, want: StreamConfig) -> bool:
    fields = ("subjects", "max_age", "max_msgs", "discard", "duplicate_window", "storage")
    return any(getattr(have, f) != getattr(want, f) for f in fields)
