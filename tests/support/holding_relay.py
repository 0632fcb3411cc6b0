"""An RPC endpoint in front of anvil that holds the first broadcast's answer: a test's handle
on "a trade of ours is on the wire, its answer not yet back".

JSON-RPC over HTTP to `target`; the first eth_sendRawTransaction's answer waits until a second
broadcast arrives or the test sets `second` (`hold_s` at most, under the RPC client's 5-s
timeout, so a held send is answered, never retried). `refuse_first`: that first broadcast is
refused as a node refuses a tx, never reaching anvil. `events`: ("send", k) as broadcast k
arrives, ("answer", k) as its answer leaves. `stale`: method -> result, answered for those
methods (alone or in a batch) as a node behind the chain answers, e.g. eth_blockNumber and
eth_getTransactionCount at an older head; every other call is relayed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_S = 3.0


class HoldingRelay(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str, hold_s: float = HOLD_S) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.target = target
        self.hold_s = hold_s
        self.events: list[tuple[str, int]] = []
        self.second = threading.Event()
        self.lock = threading.Lock()
        self.refuse_first = False
        self.stale: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def sends(self) -> list[tuple[str, int]]:
        return [e for e in self.events if e[0] == "send"]


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HoldingRelay

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        k = -1
        if b"eth_sendRawTransaction" in body:
            with self.server.lock:
                k = sum(1 for e in self.server.events if e[0] == "send")
                self.server.events.append(("send", k))
            if k == 0:
                self.server.second.wait(self.server.hold_s)
            else:
                self.server.second.set()
        if self.server.stale:
            data = self._lagging(json.loads(body))
        elif k == 0 and self.server.refuse_first:  # as a node answers a refused tx
            error = {"code": -32000, "message": "replacement transaction underpriced"}
            data = json.dumps({"jsonrpc": "2.0", "id": json.loads(body)["id"], "error": error})
            data = data.encode()
        else:
            data = self._relay(body)
        if k >= 0:
            with self.server.lock:
                self.server.events.append(("answer", k))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _relay(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.server.target, body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return bytes(reply.read())

    def _lagging(self, request: Any) -> bytes:
        """`request` (one call or a batch) answered as the lagging node: `stale` methods from
        it, the rest relayed one by one."""
        calls = request if isinstance(request, list) else [request]
        answers = []
        for call in calls:
            if call["method"] in self.server.stale:
                result = self.server.stale[call["method"]]
                answers.append({"jsonrpc": "2.0", "id": call["id"], "result": result})
            else:
                answers.append(json.loads(self._relay(json.dumps(call).encode())))
        return json.dumps(answers if isinstance(request, list) else answers[0]).encode()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def holding_relay(target: str, hold_s: float = HOLD_S) -> Iterator[HoldingRelay]:
    """A HoldingRelay to `target`, served on a thread until the block ends."""
    server = HoldingRelay(target, hold_s)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
