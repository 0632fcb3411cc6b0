"""A loopback TCP proxy in its own process, so a test can `kill -9` an RPC endpoint.

`python -m tests.support.tcp_proxy --listen PORT --target HOST:PORT` forwards every connection
(HTTP keep-alive and websocket alike: bytes are bytes) to the target. Killing the process drops
every open connection and refuses new ones, as a dead RPC provider does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mev_common.nats_server import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen: int, host: str, port: int) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


@dataclass
class TcpProxy:
    """The proxy as a child process: `url` is where clients connect, `kill()` is SIGKILL."""

    target_port: int
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TcpProxy:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.tcp_proxy",
                "--listen",
                str(self.port),
                "--target",
                f"127.0.0.1:{self.target_port}",
            ],
            cwd=REPO,
        )
        wait_for_port("127.0.0.1", self.port, 10.0)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.tcp_proxy")
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", required=True, help="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    asyncio.run(serve(args.listen, host, int(port)))


if __name__ == "__main__":
    main()
