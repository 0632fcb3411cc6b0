"""`python -m tests.support.rpc_counter TARGET_URL PORT`: an HTTP JSON-RPC proxy that counts
what passes through it; `{"method": "counter_total"}` answers the count so far and
`{"method": "counter_methods"}` the count of each method. `CountingProxy` runs it for a test.

A separate process on purpose: pyrevm holds the GIL while it waits on its RPC, so a proxy
thread in the test's own process could never answer it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from mev_ops.devnet.anvil import free_port

REPO = Path(__file__).resolve().parents[2]


class CountingProxy:
    """This module in its own process, in front of `target` (anvil)."""

    def __init__(self, target: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.rpc_counter", target, str(port)], cwd=REPO
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.total()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _ask(self, method: str) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}
        return httpx.post(self.url, json=body, timeout=5).json()["result"]

    def total(self) -> int:
        return int(self._ask("counter_total"))

    def methods(self) -> Counter[str]:
        return Counter({str(k): int(v) for k, v in self._ask("counter_methods").items()})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def main(target: str, port: int) -> None:
    methods: Counter[str] = Counter()
    client = httpx.Client(timeout=30)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = json.loads(body)
            asked = request.get("method") if isinstance(request, dict) else None
            if asked in ("counter_total", "counter_methods"):
                result = sum(methods.values()) if asked == "counter_total" else dict(methods)
                content = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result})
                reply = content.encode()
            else:
                for call in request if isinstance(request, list) else [request]:
                    methods[str(call.get("method"))] += 1
                reply = client.post(
                    target, content=body, headers={"Content-Type": "application/json"}
                ).content
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
