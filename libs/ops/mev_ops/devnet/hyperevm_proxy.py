"""A loopback stand-in for HyperEVM's official RPC, in front of anvil.

No internet reaches HyperEVM from here, so this proxy makes anvil behave like its RPC where that
changes how a bot must work: JSON-RPC over HTTP only (no WebSocket, no subscriptions, no txpool or
pending filters: anything outside the documented method list is refused), state reads at `latest`
only, eth_getLogs at most 50 blocks and 4 topics, a priority fee of 0, eth_gasPrice the next base
fee, the custom eth_bigBlockGasPrice / eth_usingBigBlocks, and a request budget per minute per
client IP answered with HTTP 429 (a batch counts each call). It does NOT reproduce big blocks
(anvil has one block size), HyperCore system transactions, or the real endpoint's latency.

Every call and every refusal is counted by method; `GET /stats` returns the counts as JSON (that
read is not counted). Run: `python -m mev_ops.devnet.hyperevm_proxy --upstream URL --port N`.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from mev_ops.devnet import hyperevm_rules as rules

STATS_PATH = "/stats"
RATE_LIMITED_CODE = -32005


class RequestBudget:
    """At most `per_minute` calls per client in any sliding 60 s window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, client: str, calls: int) -> bool:
        """Take `calls` from the client's window, or none of them and return False."""
        now = self._clock()
        with self._lock:
            window = self._seen[client]
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) + calls > self.per_minute:
                return False
            window.extend([now] * calls)
            return True


@dataclass
class ProxyStats:
    """Counts for the tests and the operator. `per_minute` keys are minutes since the first
    counted call (the client's start, not the proxy's); `max_sliding_minute_after_first` is
    the most calls in any 60 s window that starts a minute or more after that first call and
    ends by the last one (what a sliding per-minute limit sees once start-up is over)."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    http_requests: int = 0
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    rate_limited_requests: int = 0
    rate_limited_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    per_minute: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)
    first_call: float | None = None
    times: list[float] = field(default_factory=list)  # of every counted call, from the first

    def __post_init__(self) -> None:
        self.started = self.clock()

    def record_calls(self, methods: list[str]) -> None:
        now = self.clock()
        with self.lock:
            if self.first_call is None:
                self.first_call = now
            since = now - self.first_call
            self.http_requests += 1
            self.per_minute[int(since // 60)] += len(methods)
            self.times.extend([since] * len(methods))
            for method in methods:
                self.calls[method] += 1

    def record_refusal(self, method: str, reason: str) -> None:
        with self.lock:
            self.refused[method][reason] = self.refused[method].get(reason, 0) + 1

    def record_rate_limited(self, methods: list[str]) -> None:
        with self.lock:
            self.rate_limited_requests += 1
            for method in methods:
                self.rate_limited_calls[method] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "uptime_s": round(self.clock() - self.started, 3),
                "http_requests": self.http_requests,
                "calls": dict(self.calls),
                "calls_total": sum(self.calls.values()),
                "refused": {m: dict(r) for m, r in self.refused.items()},
                "refused_total": sum(sum(r.values()) for r in self.refused.values()),
                "rate_limited_requests": self.rate_limited_requests,
                "rate_limited_calls": dict(self.rate_limited_calls),
                "per_minute": {str(k): v for k, v in sorted(self.per_minute.items())},
                "max_sliding_minute_after_first": max_window(self.times, 60.0, 60.0),
            }


def max_window(times: list[float], start: float, width: float) -> int | None:
    """The most of the sorted `times` in any [s, s + width) with s >= start and s + width <=
    the last time (None when the times do not span such a window). Windows that start at a
    call are enough: sliding one to the next call can only add calls at its end."""
    if not times or times[-1] - width < start:
        return None
    best, end = 0, 0
    for i, s in enumerate(times):
        if s < start:
            continue
        if s + width > times[-1]:
            break
        end = max(end, i)
        while end < len(times) and times[end] < s + width:
            end += 1
        best = max(best, end - i)
    return best


class HyperEvmProxy:
    """The rules, the budget and the upstream; one instance serves every handler thread."""

    def __init__(self, upstream: str, budget_per_minute: int = rules.DEFAULT_BUDGET_PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.upstream = upstream
        self.budget = RequestBudget(budget_per_minute, clock)
        self.stats = ProxyStats(clock=clock)
        self._http = httpx.Client(timeout=10.0)

    def close(self) -> None:
        self._http.close()

    def _upstream(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": 0, "method": method, "params": params}
        return self._http.post(self.upstream, json=body).json().get("result")

    def _head(self) -> int:
        return int(self._upstream("eth_blockNumber", []), 16)

    def _next_base_fee(self) -> int:
        block = self._upstream("eth_getBlockByNumber", ["latest", False])
        return rules.next_base_fee(
            int(block.get("baseFeePerGas") or "0x0", 16),
            int(block["gasUsed"], 16),
            int(block["gasLimit"], 16),
        )

    def _local_answer(self, method: str) -> Any:
        """Answers the real RPC gives itself; None means forward to anvil."""
        if method == "eth_maxPriorityFeePerGas":
            return "0x0"
        if method in ("eth_gasPrice", "eth_bigBlockGasPrice"):
            return hex(self._next_base_fee())  # anvil has one block size: big = small
        if method == "eth_usingBigBlocks":
            return False
        return None

    def handle(self, client: str, payload: Any) -> tuple[int, Any]:
        """(HTTP status, JSON body) for one POST body from `client`."""
        batch = isinstance(payload, list)
        calls = payload if batch else [payload]
        if not calls or not all(isinstance(c, dict) for c in calls):
            return 400, _error(None, -32600, "invalid request")
        methods = [str(c.get("method")) for c in calls]
        if not self.budget.admit(client, len(calls)):
            self.stats.record_rate_limited(methods)
            return 429, _error(None, RATE_LIMITED_CODE, "rate limited")
        self.stats.record_calls(methods)
        head = self._head() if rules.needs_head(calls) else None
        answers: list[dict[str, Any] | None] = [None] * len(calls)
        forward: list[int] = []
        for i, call in enumerate(calls):
            params = call.get("params") or []
            refusal = rules.refusal_for(methods[i], params, head)
            if refusal is not None:
                self.stats.record_refusal(methods[i], refusal.reason)
                answers[i] = {"jsonrpc": "2.0", "id": call.get("id"), "error": refusal.error()}
                continue
            local = self._local_answer(methods[i])
            if local is not None:
                answers[i] = {"jsonrpc": "2.0", "id": call.get("id"), "result": local}
            else:
                forward.append(i)
        if forward:
            upstream = self._http.post(self.upstream, json=[calls[i] for i in forward]).json()
            for i, answer in zip(forward, _in_order(upstream, len(forward)), strict=True):
                answers[i] = answer
        return 200, answers if batch else answers[0]


def _in_order(answers: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """anvil answers a batch in order; keep that, and refuse a short answer loudly."""
    if not isinstance(answers, list) or len(answers) != n:
        raise RuntimeError(f"upstream answered a batch of {n} with {answers!r:.200}")
    return answers


def _error(call_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "error": {"code": code, "message": message}}


def make_server(proxy: HyperEvmProxy, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server for `proxy` on host:port (port 0 picks one); call serve_forever()."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # per-request lines would drown the log; the counts are at /stats

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.headers.get("Upgrade", "").lower() == "websocket":
                proxy.stats.record_refusal("websocket", "websocket")
                self._send(400, _error(None, -32600, "websocket is not supported"))
            elif self.path == STATS_PATH:
                self._send(200, proxy.stats.snapshot())
            else:
                self._send(405, _error(None, -32600, "JSON-RPC over HTTP POST only"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self._send(400, _error(None, -32700, "parse error"))
                return
            try:
                status, body = proxy.handle(self.client_address[0], payload)
            except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                status, body = 502, _error(None, -32603, f"upstream: {type(exc).__name__}")
            self._send(status, body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HyperEVM RPC stand-in in front of anvil")
    parser.add_argument("--upstream", required=True, help="anvil's HTTP URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--budget-per-minute", type=int, default=rules.DEFAULT_BUDGET_PER_MINUTE)
    args = parser.parse_args(argv)
    proxy = HyperEvmProxy(args.upstream, args.budget_per_minute)
    server = make_server(proxy, args.port)
    print(f"hyperevm proxy on 127.0.0.1:{server.server_address[1]} -> anvil", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        proxy.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
