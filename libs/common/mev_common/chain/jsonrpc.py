"""A minimal async JSON-RPC client over HTTP: retries with backoff and jitter, metrics per call.

Raw JSON-RPC instead of web3.py on the hot path: web3's own Python overhead is ~2 ms per call
(TOOLCHAIN.md), and our own keep-alive POSTs (http_post.py) instead of httpx, whose ~1.5 ms of
CPU a call was most of a victim trace's cost. Replies are decoded by the standard library, which
keeps a large integer exact (orjson would make it a float). The multi-endpoint pool of DESIGN §3
is rpc_pool.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from typing import Any

import orjson

from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.http_post import HttpError, HttpPost


class RpcError(Exception):
    """The endpoint answered with a JSON-RPC error, or did not answer after the retries."""

    def __init__(self, method: str, message: str, code: int | None = None) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.code = code


class JsonRpcClient:
    """One endpoint. `name` labels metrics; the URL is never logged (it may hold a token)."""

    def __init__(
        self, name: str, url: str, timeout_s: float = 5.0, retries: int = 3, pool_size: int = 10
    ) -> None:
        self.name = name
        self.retries = retries
        self._ids = itertools.count(1)
        self._timeout_s = timeout_s
        self.pool_size = pool_size
        self._client = HttpPost(url, timeout_s, pool_size)
        self.last_error: str | None = None
        self.last_ok_at: float | None = None

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        delay = 0.1
        for attempt in range(self.retries + 1):
            started = time.perf_counter()
            status = "ok"
            try:
                budget.process_budget().spend(1)
                request = {
                    "jsonrpc": "2.0",
                    "id": next(self._ids),
                    "method": method,
                    "params": params or [],
                }
                body = self._reply(method, *await self._client.post(encode(request)))
                if not isinstance(body, dict):
                    raise ValueError(f"expected a JSON object, got {type(body).__name__}")
                if "error" in body:
                    status = "rpc_error"
                    err = body["error"] or {}
                    # an error answer is final: the node understood and refused
                    raise _FinalRpcError(method, str(err.get("message")), err.get("code"))
                self.last_ok_at = time.time()
                self.last_error = None
                metrics.RPC_HEALTHY.labels(endpoint=self.name).set(1)
                return body.get("result")
            except _FinalRpcError as exc:
                self.last_error = str(exc)
                raise RpcError(exc.method, str(exc), exc.code) from None
            except (HttpError, RpcError, ValueError) as exc:
                status = "429" if isinstance(exc, RpcError) and exc.code == 429 else status
                status = status if status != "ok" else "transport_error"
                self.last_error = f"{method}: {type(exc).__name__}"
                metrics.RPC_HEALTHY.labels(endpoint=self.name).set(0)
                if attempt == self.retries:
                    raise RpcError(method, f"no answer after {attempt + 1} tries: {exc!r}") from exc
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
            finally:
                metrics.RPC_REQUESTS.labels(endpoint=self.name, method=method, status=status).inc()
                metrics.RPC_LATENCY.labels(endpoint=self.name).observe(
                    time.perf_counter() - started
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def call_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """One HTTP round trip for many calls (JSON-RPC batch); results in call order. A failed
        entry is returned as an RpcError instance, so one bad call does not lose the others."""
        if not calls:
            return []
        first = next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": p}
            for i, (m, p) in enumerate(calls)
        ]
        for _ in range(len(calls) - 1):
            next(self._ids)
        started = time.perf_counter()
        status = "ok"
        try:
            budget.process_budget().spend(len(body))
            replies = self._reply("batch", *await self._client.post(encode(body)))
        except RpcError:  # rate limited: the pool moves on to another endpoint
            status = "429"
            self.last_error = "batch: rate limited"
            raise
        except (HttpError, ValueError) as exc:
            status = "transport_error"
            self.last_error = f"batch: {type(exc).__name__}"
            raise RpcError("batch", f"no answer: {exc!r}") from exc
        finally:
            metrics.RPC_REQUESTS.labels(endpoint=self.name, method="batch", status=status).inc()
            metrics.RPC_LATENCY.labels(endpoint=self.name).observe(time.perf_counter() - started)
        if not isinstance(replies, list):
            raise RpcError("batch", f"expected a list of replies, got {type(replies).__name__}")
        by_id = {r.get("id"): r for r in replies}
        results: list[Any] = []
        for i, (method, _) in enumerate(calls):
            reply = by_id.get(first + i, {"error": {"message": "missing from the batch reply"}})
            if "error" in reply:
                err = reply["error"] or {}
                results.append(RpcError(method, str(err.get("message")), err.get("code")))
            else:
                results.append(reply.get("result"))
        self.last_ok_at = time.time()
        return results

    @staticmethod
    def _reply(method: str, status: int, data: bytes) -> Any:
        """A 2xx reply's decoded body; RpcError 429 when rate limited, HttpError otherwise."""
        if status == 429:
            raise RpcError(method, "rate limited (HTTP 429)", 429)
        if not 200 <= status < 300:
            raise HttpError(f"HTTP status {status}")
        return json.loads(data)

    async def resize(self, pool_size: int) -> None:
        """New connection limit (`mev-bot --adjust-rpc-pool-size`); in-flight calls finish."""
        if pool_size < 1:
            raise ValueError("pool size must be >= 1")
        self._client.resize(pool_size)
        self.pool_size = pool_size

    async def close(self) -> None:
        await self._client.close()


def encode(request: object) -> bytes:
    """orjson where it can (most requests), the standard library for an integer past 64 bits
    (orjson refuses it: never a lossy request)."""
    try:
        return orjson.dumps(request)
    except TypeError:
        return json.dumps(request).encode()


class _FinalRpcError(RpcError):
    pass
