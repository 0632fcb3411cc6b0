"""Streams as declared: what every replica may call at start without changing a thing."""

from __future__ import annotations

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


def _stream_differs(have: StreamConfig, want: StreamConfig) -> bool:
    fields = ("subjects", "max_age", "max_msgs", "discard", "duplicate_window", "storage")
    return any(getattr(have, f) != getattr(want, f) for f in fields)
