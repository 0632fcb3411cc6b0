"""The control KV and submit's lease bucket as a running stack leaves them, written directly:
a heartbeat, an ack, a stop flag, a lease someone keeps holding (the stop check's inputs)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import nats
from mev_common import control
from mev_common.kv import ensure_bucket
from mev_common.nats_auth import LEASE_BUCKET, LEASE_TTL_S


def kv_put(url: str, key: str, value: bytes | None) -> int:
    """Put (None: delete) one control KV key, as `mev-bot` and the services do; its revision."""

    async def put() -> int:
        nc = await nats.connect(url)
        try:
            kv = await control.ensure_control_bucket(nc.jetstream())
            if value is None:
                await kv.delete(key)
                return 0
            return int(await kv.put(key, value))
        finally:
            await nc.close()

    return asyncio.run(put())


@contextmanager
def held_lease(url: str, key: str, instance: str) -> Iterator[None]:
    """A submit lease `key` held by `instance`, refreshed twice a second (the bucket expires it
    3 s after the last refresh) until the block ends; then released like a clean exit."""
    started, done = threading.Event(), threading.Event()

    async def hold() -> None:
        nc = await nats.connect(url)
        try:
            kv = await ensure_bucket(nc.jetstream(), LEASE_BUCKET, history=1, ttl_s=LEASE_TTL_S)
            while True:
                await kv.put(key, instance.encode())
                started.set()
                if await asyncio.to_thread(done.wait, 0.5):
                    break
            await kv.delete(key)
        finally:
            await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(hold(),), daemon=True)
    thread.start()
    try:
        assert started.wait(10), "the lease was never written"
        yield
    finally:
        done.set()
        thread.join(10)
