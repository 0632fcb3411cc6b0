"""NATS KV buckets the services keep (the control plane, submit's lease): created once by
whoever comes first, race-safe, and the client's errors under names services can catch without
importing the client."""

from __future__ import annotations

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

__all__ = ["BROKER_ERRORS", "KV_CONFLICT", "KeyValue", "ensure_bucket"]

# No answer (broker restarting, leader election, connection lost): retry later.
BROKER_ERRORS = (nats.errors.Error, OSError)
# A compare-and-set lost: the key moved (another writer) or was created first.
KV_CONFLICT = (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.APIError)


async def ensure_bucket(
    js: JetStreamContext,
    bucket: str,
    *,
    history: int,
    replicas: int = 1,
    ttl_s: float | None = None,
) -> KeyValue:
    """The bucket, created (file storage) if absent: idempotent, safe for every replica to call
    at start and again after a reconnect. `replicas` is `nats.replicas`."""
    try:
        return await js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        pass
    config = KeyValueConfig(
        bucket=bucket, history=history, storage=StorageType.FILE, replicas=replicas
    )
    if ttl_s is not None:
        config.ttl = ttl_s
    try:
        return await js.create_key_value(config)
    except nats.js.errors.BadRequestError:  # another replica created it first
        return await js.key_value(bucket)
