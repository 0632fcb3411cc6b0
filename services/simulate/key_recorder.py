"""A loopback JSON-RPC "node" for discovery: serves the values it was given, records every key
asked for. `python -m services.simulate.key_recorder` (simulate starts it; latest_state.py).

Why a process of its own: pyrevm forks only from a URL, and it holds the GIL while it waits for
the answer, so a server in the simulate process would deadlock. A pyrevm EVM forked from here
reads every account and slot it touches through this server, in reverted frames too (a trace
or the journal loses those), so after running the probe calls the recorded keys are exactly
what a trade reads. Unknown keys answer zero/empty: fine for finding keys, never used to
simulate (the warm EVM is loaded from checked reads of the chain).
Custom methods: `recorder_put` [[address, balance, nonce, code, {slot: value}], ...] and
`recorder_take` (the keys asked since the last take: [["account", a] | ["slot", a, slot]]).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ZERO_WORD = "0x" + "00" * 32


class Store:
    def __init__(self) -> None:
        self.accounts: dict[str, tuple[int, int, str]] = {}
        self.slots: dict[tuple[str, int], int] = {}
        self.asked: dict[tuple[Any, ...], None] = {}
        self.lock = threading.Lock()

    def answer(self, method: str, params: list[Any]) -> Any:
        with self.lock:
            if method in ("eth_getBalance", "eth_getTransactionCount", "eth_getCode"):
                address = str(params[0]).lower()
                self.asked[("account", address)] = None
                balance, nonce, code = self.accounts.get(address, (0, 0, "0x"))
                return {"eth_getBalance": hex(balance), "eth_getTransactionCount": hex(nonce),
                        "eth_getCode": code}[method]  # fmt: skip
            if method == "eth_getStorageAt":
                address, slot = str(params[0]).lower(), int(params[1], 16)
                self.asked[("slot", address, slot)] = None
                value = self.slots.get((address, slot), 0)
                return "0x" + value.to_bytes(32, "big").hex()
            if method == "recorder_put":
                for address, balance, nonce, code, storage in params:
                    self.accounts[address.lower()] = (int(balance), int(nonce), code)
                    for slot, value in storage.items():
                        self.slots[(address.lower(), int(slot))] = int(value)
                return True
            if method == "recorder_take":
                asked, self.asked = list(self.asked), {}
                return [list(k) for k in asked]
            if method == "eth_chainId":
                return "0x1"
            if method == "eth_blockNumber":
                return "0x1"
            if method == "eth_getBlockByNumber":
                return None
        raise ValueError(f"method {method} not served")


def handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls = body if isinstance(body, list) else [body]
            replies = []
            for call in calls:
                try:
                    result = store.answer(call["method"], call.get("params") or [])
                    replies.append({"jsonrpc": "2.0", "id": call.get("id"), "result": result})
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    error = {"code": -32601, "message": str(exc)}
                    replies.append({"jsonrpc": "2.0", "id": call.get("id"), "error": error})
            data = json.dumps(replies if isinstance(body, list) else replies[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(Store()))
    print(server.server_address[1], flush=True)  # the parent reads the port from here
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # the parent holds our stdin: when it exits (however), so do we


if __name__ == "__main__":
    main()
