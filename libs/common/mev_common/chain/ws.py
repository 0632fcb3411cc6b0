"""`eth_subscribe` over WebSocket: new heads and pending transactions pushed as they happen.

The caller owns reconnects: when the socket drops, `subscribe` returns, and the caller falls
back to HTTP polling until it comes back, then backfills the gap (HeadFollower).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from websockets.asyncio.client import connect


class SubscriptionRefused(Exception):
    """The endpoint answered the subscribe with an error (e.g. no pending-tx feed)."""


async def subscribe(
    url: str, params: list[Any], open_timeout_s: float = 3.0
) -> AsyncIterator[dict[str, Any]]:
    """Yield each `result` of one subscription until the connection closes."""
    async with connect(url, open_timeout=open_timeout_s, max_size=2**24) as ws:
        await ws.send(
            orjson.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": params}
            ).decode()
        )
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=open_timeout_s))
        if "error" in reply:
            raise SubscriptionRefused(str(reply["error"].get("message", reply["error"])))
        sub_id = reply["result"]
        async for frame in ws:
            message = orjson.loads(frame)
            inner = message.get("params") or {}
            if inner.get("subscription") == sub_id:
                yield inner["result"]
