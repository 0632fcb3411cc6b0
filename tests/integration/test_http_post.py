"""JSON-RPC over our keep-alive HTTP/1.1 POSTs (mev_common.chain.http_post): against a real
anvil, and against a scripted HTTP server on a real socket for the framings and failures a
public RPC (or the proxy in front of it) can answer with."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from mev_common.chain.http_post import HttpPost, request_head
from mev_common.chain.jsonrpc import JsonRpcClient, RpcError
from mev_ops.devnet.anvil import AnvilNode, start_anvil
from mev_ops.nats_server import free_port

CHAIN = 31337
Reply = Callable[[dict[str, object], int], bytes]  # (request, connection's call number) -> bytes


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    node = start_anvil(free_port(), CHAIN, None, Path(tmp_path_factory.mktemp("anvil")))
    try:
        yield node
    finally:
        node.stop()


class Scripted:
    """An HTTP server on 127.0.0.1 answering each POST with `reply`'s raw bytes; it counts
    connections and keeps each request's head."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.heads: list[bytes] = []
        self.hang_up = False  # close each connection after its first reply, unannounced
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        calls = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = json.loads(await reader.readexactly(length))
                calls += 1
                out = self.reply(request, calls)
                if out == b"hang":
                    await asyncio.sleep(3600)
                writer.write(out)
                await writer.drain()
                if self.hang_up or out.startswith(b"HTTP/1.0") or b"Connection: close" in out:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/rpc/key?x=1"


MakeServer = Callable[[Reply], Awaitable[Scripted]]


@pytest.fixture
async def scripted() -> AsyncIterator[MakeServer]:
    made: list[Scripted] = []

    async def make(reply: Reply) -> Scripted:
        s = Scripted(reply)
        s.server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
        made.append(s)
        return s

    yield make
    for s in made:
        assert s.server is not None
        s.server.close()


@contextlib.asynccontextmanager
async def rpc_on(
    server: Scripted, timeout_s: float = 5.0, retries: int = 3
) -> AsyncIterator[JsonRpcClient]:
    """A JsonRpcClient of `server` (JsonRpcClient's defaults), closed after."""
    client = JsonRpcClient("s", server.url, timeout_s, retries)
    try:
        yield client
    finally:
        await client.close()


def result(request: dict[str, object], value: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": value}).encode()


def framed(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def test_anvil_calls_share_one_connection(anvil: AnvilNode) -> None:
    client = JsonRpcClient("anvil", anvil.rpc_url)
    try:
        for _ in range(20):
            assert int(await client.call("eth_chainId"), 16) == CHAIN
        batch = await client.call_batch([("eth_chainId", []), ("eth_noSuchMethod", [])])
        assert int(batch[0], 16) == CHAIN
        assert isinstance(batch[1], RpcError) and batch[1].code == -32601
        with pytest.raises(RpcError) as err:
            await client.call("eth_noSuchMethod")
        assert err.value.code == -32601
        assert client._client.opened == 1
    finally:
        await client.close()


async def test_chunked_and_closing_replies(
    scripted: MakeServer,
) -> None:
    def reply(request: dict[str, object], call: int) -> bytes:
        body = result(request, 2**80 + call)  # past 64 bits: must stay exact
        if call == 1:  # chunked, with a chunk extension and a trailer
            half = len(body) // 2
            chunks = f"{half:x};ext=1\r\n".encode() + body[:half] + b"\r\n"
            chunks += f"{len(body) - half:X}\r\n".encode() + body[half:] + b"\r\n"
            return (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunks
                + b"0\r\nT: 1\r\n\r\n"
            )
        return framed(body, "Connection: close\r\n")

    server = await scripted(reply)
    async with rpc_on(server) as client:
        assert await client.call("m") == 2**80 + 1
        assert await client.call("m") == 2**80 + 2  # same connection, which it then closes
        assert await client.call("m") == 2**80 + 1  # a new one
        assert server.connections == 2
        head = server.heads[0].decode()
        assert head.startswith("POST /rpc/key?x=1 HTTP/1.1\r\n")


async def test_http10_reply_framed_by_the_connection_end(
    scripted: MakeServer,
) -> None:
    server = await scripted(lambda req, _: b"HTTP/1.0 200 OK\r\n\r\n" + result(req, "0x1"))
    async with rpc_on(server) as client:
        assert await client.call("m") == "0x1"
        assert await client.call("m") == "0x1"
        assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    scripted: MakeServer,
) -> None:
    server = await scripted(lambda req, _: framed(result(req, "0x2")))
    server.hang_up = True  # a keep-alive reply, then the server closes the idle connection
    async with rpc_on(server, retries=0) as client:
        for _ in range(3):
            assert await client.call("m") == "0x2"
            await asyncio.sleep(0.05)  # the close reaches the client while the connection idles
        assert server.connections == 3


async def test_rate_limit_error_status_and_timeout(
    scripted: MakeServer,
) -> None:
    def reply(request: dict[str, object], call: int) -> bytes:
        method = request["method"]
        if method == "limited":
            return b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n"
        if method == "broken":
            return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"
        if method == "slow":
            return b"hang"
        return framed(result(request, "0x3"))

    server = await scripted(reply)
    async with rpc_on(server, timeout_s=0.2, retries=0) as client:
        with pytest.raises(RpcError, match=r"rate limited \(HTTP 429\)"):
            await client.call("limited")
        with pytest.raises(RpcError) as err:
            await client.call("broken")
        assert err.value.code is None and "502" in str(err.value)
        with pytest.raises(RpcError, match=r"no reply within 0\.2 s"):
            await client.call("slow")
        assert await client.call("m") == "0x3"  # a new connection: the slow one was closed
        assert server.connections == 2


def test_request_head_carries_path_host_and_credentials() -> None:
    host, port, tls, head = request_head("https://user:p%40ss@rpc.example:8443/v1/abc?k=2")
    assert (host, port, tls) == ("rpc.example", 8443, True)
    text = head.decode()
    assert text.startswith("POST /v1/abc?k=2 HTTP/1.1\r\nHost: rpc.example:8443\r\n")
    assert "Authorization: Basic dXNlcjpwQHNz\r\n" in text  # user:p@ss
    assert text.endswith("Content-Length: ")
    assert request_head("http://127.0.0.1")[3].startswith(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    with pytest.raises(ValueError):
        request_head("ws://127.0.0.1:8545")


async def test_pool_size_bounds_connections(
    scripted: MakeServer,
) -> None:
    server = await scripted(lambda req, _: framed(result(req, "0x4")))
    post = HttpPost(server.url, 1.0, pool_size=2)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "m", "params": []}).encode()
        replies = await asyncio.gather(*(post.post(body) for _ in range(10)))
        assert [status for status, _ in replies] == [200] * 10
        assert post.opened <= 2 and server.connections <= 2
    finally:
        await post.close()
