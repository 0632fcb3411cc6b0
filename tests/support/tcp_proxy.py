"""A loopback TCP proxy a test can kill and bring back: an RPC endpoint that dies for real.

Killing it closes the listening socket and every open connection (clients see a reset or a
refused connect, as when a node's process dies); `start()` listens on the same port again.
Threads, not asyncio, so it keeps forwarding while the test's own event loop is busy.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from mev_ops.nats_server import free_port


class TcpProxy:
    def __init__(self, target_port: int, port: int | None = None, delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_s = delay_s  # added to each request: a slower endpoint ranks last
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def kill(self) -> None:
        """Stop listening and cut every open connection at once."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                if self._listener is not listener:
                    return  # killed
                time.sleep(0.01)  # transient (aborted connect, out of descriptors): keep serving
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            for src, dst, delay in ((client, upstream, self.delay_s), (upstream, client, 0.0)):
                threading.Thread(target=self._pump, args=(src, dst, delay), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay_s: float) -> None:
        try:
            while data := src.recv(65536):
                if delay_s:
                    time.sleep(delay_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
