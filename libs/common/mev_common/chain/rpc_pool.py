"""Several RPC endpoints behind one `call`: ranked by health, lag and latency; failover at once.

Why: a public chain RPC errors, lags and rate-limits (HyperEVM's official one: ~100 req/min).
Each call goes to the best endpoint whose token bucket allows it; an error or timeout moves the
same call to the next endpoint immediately, and the failed endpoint sits out with exponential
backoff and jitter. `monitor()` polls every endpoint's head so one that lags behind the others
is ranked last. The rate factor and pool size can change live (control KV).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.jsonrpc import JsonRpcClient, RpcError
from mev_common.chain.ratelimit import TokenBucket
from mev_common.settings import RpcEndpoint

log = logging.getLogger("mev.rpc")


class ChainIdMismatch(Exception):
    """The endpoint serves another chain than the config says: refuse to run."""


@dataclass
class EndpointState:
    """What ranking needs to know about one endpoint (plain data, ranked by a pure function)."""

    name: str
    head: int | None = None
    consecutive_errors: int = 0
    down_until: float = 0.0
    latency_s: float = 0.0
    last_error: str | None = None


def split_endpoints(
    states: Sequence[EndpointState], now: float, max_lag_blocks: int
) -> tuple[list[EndpointState], list[EndpointState]]:
    """(usable, the rest): usable ones are not backing off and within `max_lag_blocks` of the
    best head, fastest first; the rest, a last resort, fewest errors first."""
    heads = [s.head for s in states if s.head is not None and s.down_until <= now]
    best = max(heads) if heads else None

    def usable(s: EndpointState) -> bool:
        lagging = best is not None and s.head is not None and best - s.head > max_lag_blocks
        return s.down_until <= now and not lagging

    good = sorted((s for s in states if usable(s)), key=lambda s: (s.latency_s, s.name))
    rest = sorted(
        (s for s in states if not usable(s)), key=lambda s: (s.consecutive_errors, s.name)
    )
    return good, rest


def rank_endpoints(
    states: Sequence[EndpointState], now: float, max_lag_blocks: int
) -> list[EndpointState]:
    """Usable endpoints first, fastest first; then the rest (split_endpoints)."""
    good, rest = split_endpoints(states, now, max_lag_blocks)
    return good + rest


def backoff_s(consecutive_errors: int, base: float = 0.25, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter in [base/2, ...]: 0.25, 0.5, 1, 2 ... capped."""
    ceiling = min(cap, base * (2.0 ** max(0, consecutive_errors - 1)))
    return ceiling * (0.5 + random.random() / 2)


class RpcPool:
    def __init__(
        self,
        endpoints: Sequence[RpcEndpoint],
        max_lag_blocks: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one RPC endpoint is needed")
        self._clock = clock
        self.max_lag_blocks = max_lag_blocks
        self._configs = {e.name: e for e in endpoints}
        self.states = {e.name: EndpointState(e.name) for e in endpoints}
        self.buckets = {e.name: TokenBucket(e.rate_limit_rps, clock=clock) for e in endpoints}
        self.clients = {
            e.name: JsonRpcClient(e.name, e.url, e.timeout_s, retries=0, pool_size=e.pool_size)
            for e in endpoints
        }
        self._window = metrics.RateTracker()
        self._total = 0

    # -- live controls -------------------------------------------------------------------
    def set_rate_factor(self, factor: float) -> None:
        for bucket in self.buckets.values():
            bucket.set_factor(factor)

    async def set_pool_size(self, size: int) -> None:
        for client in self.clients.values():
            await client.resize(size)

    # -- calls ---------------------------------------------------------------------------
    async def call(
        self, method: str, params: list[Any] | None = None, rounds: int = 3, *, keep: float = 0.0
    ) -> Any:
        """Try every endpoint in rank order; repeat `rounds` times with backoff between rounds.
        `keep`: tokens of the endpoint's bucket this call leaves to others (TokenBucket.try_take):
        background work asks with keep > 0 so calls on the hot path never wait behind it."""
        last: Exception | None = None
        for round_no in range(rounds):
            for state in rank_endpoints(
                list(self.states.values()), self._clock(), self.max_lag_blocks
            ):
                try:
                    return await self._call_one(state, method, params, keep)
                except RpcError as exc:
                    if exc.code is not None and exc.code != 429:
                        raise  # the node answered: another endpoint would answer the same
                    last = exc
            if round_no < rounds - 1:
                await asyncio.sleep(backoff_s(round_no + 1))
        raise RpcError(method, f"every endpoint failed: {last}")

    async def call_on(self, name: str, method: str, params: list[Any] | None = None) -> Any:
        """One call on endpoint `name`, no fallback: a question only that node can answer (does
        its pool hold a tx sent to it alone?)."""
        return await self._call_one(self.states[name], method, params)

    async def _call_one(
        self, state: EndpointState, method: str, params: list[Any] | None, keep: float = 0.0
    ) -> Any:
        wait = self.buckets[state.name].try_take(keep=keep)
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.buckets[state.name].try_take(keep=keep)
        started = time.perf_counter()
        self._total += 1
        metrics.RPC_REQUESTS_PER_SECOND.set(self._window.rate(self._total))
        try:
            result = await self.clients[state.name].call(method, params)
        except RpcError as exc:
            if exc.code is None or exc.code == 429:  # transport failure or rate limit
                state.consecutive_errors += 1
                state.down_until = self._clock() + backoff_s(state.consecutive_errors)
                state.last_error = str(exc)
            raise
        elapsed = time.perf_counter() - started
        state.latency_s = elapsed if state.latency_s == 0 else 0.8 * state.latency_s + 0.2 * elapsed
        state.consecutive_errors = 0
        state.down_until = 0.0
        state.last_error = None
        return result

    async def call_batch(self, calls: list[tuple[str, list[Any]]], chunk: int = 100) -> list[Any]:
        """Many calls in JSON-RPC batches of `chunk`, each batch on the best endpoint (one
        token per call). Failed entries come back as RpcError instances."""
        return [reply for _, reply in await self.call_batch_sourced(calls, chunk)]

    async def call_batch_sourced(
        self, calls: list[tuple[str, list[Any]]], chunk: int = 100
    ) -> list[tuple[str, Any]]:
        """`call_batch`, each reply with the name of the endpoint that gave it: ingest names
        the node a pending tx came from, the one a backrun of it is sent to."""
        results: list[tuple[str, Any]] = []
        for start in range(0, len(calls), chunk):
            part = calls[start : start + chunk]
            last: Exception | None = None
            for state in rank_endpoints(
                list(self.states.values()), self._clock(), self.max_lag_blocks
            ):
                bucket = self.buckets[state.name]
                wait = bucket.try_take(min(len(part), bucket.burst))
                while wait > 0:
                    await asyncio.sleep(wait)
                    wait = bucket.try_take(min(len(part), bucket.burst))
                try:
                    replies = await self.clients[state.name].call_batch(part)
                    results += [(state.name, reply) for reply in replies]
                    break
                except RpcError as exc:
                    state.consecutive_errors += 1
                    state.down_until = self._clock() + backoff_s(state.consecutive_errors)
                    state.last_error = str(exc)
                    last = exc
            else:
                raise RpcError("batch", f"every endpoint failed: {last}")
        return results

    async def verify_chain_id(self, expected: int) -> None:
        """Every endpoint that answers must serve `expected`; at least one must answer."""
        answered = 0
        for name, client in self.clients.items():
            try:
                got = int(await client.call("eth_chainId"), 16)
            except RpcError as exc:
                self.states[name].last_error = str(exc)
                continue
            answered += 1
            if got != expected:
                raise ChainIdMismatch(
                    f"RPC endpoint {name!r} serves chain {got}, the config says chain.chain_id "
                    f"{expected}: refusing to run"
                )
        if answered == 0:
            raise RpcError("eth_chainId", "no RPC endpoint answered")

    async def refresh_heads(self) -> None:
        """One `eth_blockNumber` per endpoint, to rank lagging endpoints last."""
        for state in self.states.values():
            if state.down_until > self._clock():
                continue
            try:
                state.head = int(await self._call_one(state, "eth_blockNumber", []), 16)
            except RpcError:
                continue
            metrics.RPC_HEALTHY.labels(endpoint=state.name).set(1)

    async def monitor(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            # ranking endpoints can wait: under a call budget it takes only the spare half,
            # and with one endpoint there is nothing to rank (its head costs calls for nothing)
            spend = budget.process_budget()
            if spend.per_minute is not None and len(self.states) < 2:
                pass
            elif spend.allows(len(self.states), keep_free=0.5):
                await self.refresh_heads()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass

    def best_url(self, current: str | None = None) -> str:
        """The HTTP URL a client that holds one URL (simulate's forked EVM) should use: its
        `current` one while that endpoint is usable (up, not lagging), else the one ranked
        first. Sticky because a switch costs such a client a cold refork, and two healthy
        endpoints' latency averages cross each other all the time (simulate reforked on
        blocks where both chaos endpoints were up)."""
        good, rest = split_endpoints(list(self.states.values()), self._clock(), self.max_lag_blocks)
        if current is not None and any(self._configs[s.name].url == current for s in good):
            return current
        return self._configs[(good + rest)[0].name].url

    def health(self) -> dict[str, Any]:
        now = self._clock()
        return {
            s.name: {
                "head": s.head,
                "up": s.down_until <= now,
                "latency_ms": round(s.latency_s * 1000, 2),
                "errors": s.consecutive_errors,
                "last_error": s.last_error,
                "rate_rps": round(self.buckets[s.name].rate, 2),
            }
            for s in self.states.values()
        }

    def any_up(self) -> bool:
        now = self._clock()
        return any(s.down_until <= now for s in self.states.values())

    def all_down_reason(self) -> str | None:
        """Why the chain is unreachable (the last call to every endpoint failed), else None.
        Submit sends nothing while this is set; /health turns 503 on it."""
        states = list(self.states.values())
        if any(s.consecutive_errors == 0 for s in states):
            return None
        errors = "; ".join(f"{s.name}: {s.last_error or 'no answer'}" for s in states)
        return f"every RPC endpoint is down ({errors})"

    async def probe_failing(self) -> None:
        """Ask each failing endpoint for its head, ignoring its backoff: an endpoint that is
        back is usable at once, even by a service that has no RPC traffic of its own."""
        for state in self.states.values():
            if state.consecutive_errors == 0:
                continue
            head: int | None
            try:
                head = int(await self.clients[state.name].call("eth_blockNumber", []), 16)
            except RpcError as exc:
                if exc.code is None or exc.code == 429:
                    state.last_error = str(exc)
                    continue
                head = state.head  # it answered (with an error): it is up
            except ValueError:
                head = state.head
            log.info("RPC endpoint back", extra={"fields": {"endpoint": state.name}})
            state.head, state.consecutive_errors, state.down_until = head, 0, 0.0
            state.last_error = None

    async def watch_failing(self, stop: asyncio.Event, interval_s: float = 0.5) -> None:
        """`probe_failing` every `interval_s` until `stop` (costs nothing while all is up)."""
        while not stop.is_set():
            # under a call budget a probe that succeeds is spent like any call, and one that
            # is refused (HTTP 429) says nothing new: probe seldom, and only with room to spare
            spend = budget.process_budget()
            if spend.per_minute is not None:
                interval_s = max(interval_s, 5.0)
            try:
                if spend.allows(len(self.states), keep_free=0.5):
                    await self.probe_failing()
            except Exception as exc:  # a probe must never end the loop
                log.warning("RPC probe failed", extra={"fields": {"error": repr(exc)}})
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def wait_for_chain(pool: RpcPool, chain_id: int, stop: asyncio.Event) -> bool:
    """Check eth_chainId before anything else: raise on a wrong chain (refuse to run), wait
    with backoff while no endpoint answers (at most 1 s: `mev-bot run` starts the services
    while the devnet is still coming up). False if `stop` was set first."""
    delay = 0.25
    while not stop.is_set():
        try:
            await pool.verify_chain_id(chain_id)
            return True
        except RpcError as exc:
            log.warning("RPC not reachable, retrying", extra={"fields": {"error": str(exc)}})
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            pass
        delay = min(delay * 2, 1.0)
    return False
