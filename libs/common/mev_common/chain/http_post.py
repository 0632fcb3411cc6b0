"""JSON-RPC's transport: HTTP/1.1 POSTs to one URL over keep-alive connections, nothing else.

Why not httpx: through httpx (and anyio, h11, httpcore) one JSON-RPC call cost ~1.5 ms of the
caller's CPU and ~4 ms of wall time against a local anvil on the 2-core machine, where a POST
written and read here on asyncio streams cost ~0.1 ms and ~0.2 ms. Every service's RPC sits on
that path (simulate's victim traces and block diffs, ingest's block logs, submit's sends): on
`make run` a victim's trace was the largest hop of a backrun's seen -> bundle after detect.

What it speaks: one request at a time per connection, a reply framed by Content-Length, chunked
transfer coding or the connection's end (HTTP/1.0 servers), `Connection: close` honoured; http
and https (system CA store); credentials in the URL sent as Basic auth. An idle connection the
server closed, or idle past IDLE_S, is not reused. Errors are HttpError (the caller retries on
another endpoint); a connection that failed or timed out mid-request is closed, never reused.
Proxy environment variables are not read (httpx read them): an RPC is reached directly.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass

IDLE_S = 15.0  # an idle connection older than this is closed rather than reused (servers
# close idle keep-alive connections after 60-75 s; a request on one they closed is lost)
MAX_HEADER_BYTES = 64 * 1024


class HttpError(Exception):
    """No usable reply: connection refused or lost, timeout, or a reply that is not HTTP."""


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and now - self.idle_since < IDLE_S
        )

    def close(self) -> None:
        self.writer.close()


def request_head(url: str) -> tuple[str, int, bool, bytes]:
    """(host, port, tls, the request's bytes up to the Content-Length value) for `url`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an RPC URL must be http:// or https:// with a host")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = port == (443 if tls else 80)
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host}" + ("" if default else f":{port}"),
        "Content-Type: application/json",
        "Accept: application/json",
    ]
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        lines.append(f"Authorization: Basic {token}")
    head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
    return parts.hostname, port, tls, head


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep the connection) of one reply (1xx interim replies skipped)."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise HttpError("reply headers too large") from exc
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise HttpError(f"not an HTTP reply: {lines[0][:40]!r}")
        status = int(rest[:3])
        if not 100 <= status < 200:
            break
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    keep = version == b"HTTP/1.1" and headers.get(b"connection") != b"close"
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(chunks), keep
    length = headers.get(b"content-length")
    if length is not None:
        return status, await reader.readexactly(int(length)), keep
    if status in (204, 304):
        return status, b"", keep
    return status, await reader.read(), False  # framed by the connection's end


class HttpPost:
    """POSTs to one URL, at most `pool_size` connections at once (the rest wait their turn)."""

    def __init__(self, url: str, timeout_s: float, pool_size: int) -> None:
        self.host, self.port, tls, self._head = request_head(url)
        self._ssl = ssl.create_default_context() if tls else None
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: deque[_Conn] = deque()
        self.opened = 0  # connections opened so far (tests: keep-alive reuses them)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST of `body`; HttpError when there is no usable reply."""
        async with self._slots:
            conn: _Conn | None = None
            try:
                async with asyncio.timeout(self.timeout_s):
                    conn = self._reuse() or await self._open()
                    conn.writer.write(self._head + b"%d\r\n\r\n" % len(body) + body)
                    status, data, keep = await read_reply(conn.reader)
            except TimeoutError as exc:
                if conn is not None:
                    conn.close()
                raise HttpError(f"no reply within {self.timeout_s} s") from exc
            except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
                if conn is not None:
                    conn.close()
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:  # cancelled mid-request: the reply would be the next's
                if conn is not None:
                    conn.close()
                raise
            if keep:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()
            return status, data

    def _reuse(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recent: the least likely to be timed out
            if conn.usable(now):
                return conn
            conn.close()
        return None

    async def _open(self) -> _Conn:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self._ssl, limit=MAX_HEADER_BYTES
        )
        self.opened += 1
        return _Conn(reader, writer)

    def resize(self, pool_size: int) -> None:
        """A new connection limit; calls in flight finish under the old one."""
        self.pool_size = pool_size
        self._slots = asyncio.Semaphore(pool_size)
        while len(self._idle) > pool_size:
            self._idle.popleft().close()

    async def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            conn.close()
            try:
                await conn.writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
