"""`python -m tests.support.rpc_counter TARGET_URL PORT`: an HTTP JSON-RPC proxy that counts
what passes through it; `{"method": "counter_total"}` answers the count so far.

A separate process on purpose: pyrevm holds the GIL while it waits on its RPC, so a proxy
thread in the test's own process could never answer it.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


def main(target: str, port: int) -> None:
    total = 0
    client = httpx.Client(timeout=30)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal total
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = json.loads(body)
            if isinstance(request, dict) and request.get("method") == "counter_total":
                content = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": total})
                reply = content.encode()
            else:
                total += len(request) if isinstance(request, list) else 1
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
