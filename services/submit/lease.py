"""One active submitter per key: a lease in a NATS KV bucket, refreshed every second.

Why a lease: two processes signing with one key would race for nonces and could both send a
trade for one bundle. The bucket has a server-side TTL, so a holder that dies simply stops
refreshing and its entry expires on the broker's clock (no cross-host clock skew involved); a
standby then creates the key (create fails while it exists) and becomes active. Refreshes are
compare-and-set on the revision, so a holder that lost the lease learns it on its next refresh.

The holder treats the lease as lost `ttl - margin` after its last successful refresh, before
the broker can hand it to anyone else: a paused or partitioned holder stops sending first.
Exactly-once across a takeover additionally needs the SQLite ledger on a disk both share (the
standby reads the in-flight txs from it); on separate disks a takeover may lose tracking of
in-flight txs (never double-signs a nonce: the new holder syncs nonces from the chain's pending
count, which includes every tx the node has seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from mev_common.bus import Bus
from mev_common.kv import BROKER_ERRORS, KV_CONFLICT, KeyValue

log = logging.getLogger("mev.submit.lease")

LEASE_BUCKET = "mev-submit-lease"
LEASE_TTL_S = 3.0
REFRESH_S = 1.0
SAFETY_MARGIN_S = 1.0


def lease_key(chain_id: int, address: str) -> str:
    return f"{chain_id}.{address.lower()}"


async def lease_bucket(bus: Bus, ttl_s: float = LEASE_TTL_S, replicas: int = 1) -> KeyValue:
    """The lease bucket (one entry per key, expiring `ttl_s` after its last refresh)."""
    return await bus.key_value(LEASE_BUCKET, history=1, ttl_s=ttl_s, replicas=replicas)


@dataclass
class Lease:
    """This instance's view of the lease; `held()` is what a send checks."""

    key: str
    instance: str
    ttl_s: float = LEASE_TTL_S
    revision: int | None = None
    refreshed_at: float = float("-inf")  # monotonic time of the last successful create/update
    holder: str | None = None

    def held(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.revision is not None and now - self.refreshed_at < self.ttl_s - SAFETY_MARGIN_S

    async def try_acquire_or_refresh(self, kv: KeyValue) -> bool:
        """One step: refresh if we hold it, else try to take it. True while held."""
        value = self.instance.encode()
        started = time.monotonic()
        try:
            if self.revision is not None:
                self.revision = await kv.update(self.key, value, last=self.revision)
            else:
                self.revision = await kv.create(self.key, value)
            self.refreshed_at = started
            self.holder = self.instance
            return True
        except KV_CONFLICT as exc:
            if self.revision is not None and await self._adopt_own_write(kv, value, started):
                return True
            if self.revision is not None:
                log.error("lease lost", extra={"fields": {"error": repr(exc)}})
            self.revision = None
            with contextlib.suppress(Exception):
                entry = await kv.get(self.key)
                self.holder = (entry.value or b"").decode() or None
            return False
        except BROKER_ERRORS as exc:
            # no answer: keep our revision (held() expires it on time) and retry next tick
            log.warning("lease refresh failed", extra={"fields": {"error": repr(exc)}})
            return self.held()

    async def _adopt_own_write(self, kv: KeyValue, value: bytes, started: float) -> bool:
        """A refresh whose answer was lost (broker restart, cluster election) may still have
        been written: the key then holds our own instance at a newer revision. Refresh on top
        of that revision instead of losing the lease and waiting out its TTL."""
        try:
            entry = await kv.get(self.key)
            if entry.value != value or entry.revision is None:
                return False
            self.revision = await kv.update(self.key, value, last=entry.revision)
        except BROKER_ERRORS:
            return False
        self.refreshed_at = started
        log.info("lease kept: our refresh had landed", extra={"fields": {"key": self.key}})
        return True


@dataclass
class Leases:
    """One lease per lane key (a key is one nonce sequence: one submitter may sign with it).
    Sends need every one of them held."""

    all: list[Lease]

    def held(self, now: float | None = None) -> bool:
        return all(lease.held(now) for lease in self.all)

    @property
    def holder(self) -> str | None:
        """Who holds the first lease we do not (for /health), else us."""
        for lease in self.all:
            if not lease.held():
                return lease.holder
        return self.all[0].holder


async def keep_lease(
    bus: Bus, lease: Lease, became_active: asyncio.Event, stop: asyncio.Event
) -> None:
    """Acquire (standby polls twice a second) and refresh every second until `stop`; on stop,
    delete the key so a standby takes over at once."""
    kv: KeyValue | None = None
    while not stop.is_set():
        try:
            if kv is None:
                kv = await lease_bucket(bus, lease.ttl_s)
            held = await lease.try_acquire_or_refresh(kv)
        except BROKER_ERRORS as exc:
            log.warning("lease bucket unavailable", extra={"fields": {"error": repr(exc)}})
            held = lease.held()
        if held and not became_active.is_set():
            log.info("lease acquired: submitter active", extra={"fields": {"key": lease.key}})
            became_active.set()
        interval = REFRESH_S if held else REFRESH_S / 2
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    if kv is not None and lease.revision is not None:
        with contextlib.suppress(Exception):
            await kv.delete(lease.key, last=lease.revision)
        lease.revision = None
