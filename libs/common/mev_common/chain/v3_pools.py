"""Read Uniswap V3 pools' swap state from the chain at one block, in JSON-RPC batches.

Three rounds of `eth_call` at the same block, so the snapshot is consistent and later `Swap`,
`Mint` and `Burn` logs apply on top of it (amm/v3_book.py): the pool's constants and
slot0/liquidity; every tickBitmap word a tick of its spacing can live in; `ticks(t)` of every
initialized tick. Why the whole bitmap: a swap's path is decided by which ticks are initialized
anywhere on its way, and the bitmap is the only list of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_math import MAX_TICK, MIN_TICK

BatchCall = Callable[[list[tuple[str, list[Any]]]], Awaitable[list[Any]]]


def _selector(signature: str) -> str:
    return "0x" + function_signature_to_4byte_selector(signature).hex()


HEADER = [
    (_selector("token0()"), ["address"]),
    (_selector("token1()"), ["address"]),
    (_selector("fee()"), ["uint24"]),
    (_selector("tickSpacing()"), ["int24"]),
    (_selector("slot0()"), ["uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"]),
    (_selector("liquidity()"), ["uint128"]),
]
TICK_BITMAP = _selector("tickBitmap(int16)")
TICKS = _selector("ticks(int24)")
TICK_INFO = ["uint128", "int128", "uint256", "uint256", "int56", "uint160", "uint32", "bool"]


def _call(to: str, data: str, block: int) -> tuple[str, list[Any]]:
    return "eth_call", [{"to": to, "data": data}, hex(block)]


def _decode(types: list[str], result: Any) -> tuple[Any, ...]:
    if isinstance(result, Exception):
        raise result
    return decode(types, bytes.fromhex(str(result)[2:]))


def word_range(tick_spacing: int) -> range:
    """Every tickBitmap word position a tick of this spacing can occupy."""
    return range((MIN_TICK // tick_spacing) >> 8, ((MAX_TICK // tick_spacing) >> 8) + 1)


async def fetch_v3_pools(
    call_batch: BatchCall, pools: Sequence[str], block: int, words_around: int | None = None
) -> list[V3Pool]:
    """The swap state of each pool at `block` (`call_batch`: e.g. RpcPool.call_batch).

    `words_around`: read only the bitmap words within that many of the current tick's word (a
    quoting model that never moves the price that far: the devnet flow's slippage limits);
    None reads them all, which is what exact state needs.
    """
    answers = await call_batch([_call(p, sel, block) for p in pools for sel, _ in HEADER])
    headers = []
    for k, pool in enumerate(pools):
        row = answers[len(HEADER) * k : len(HEADER) * (k + 1)]
        t0, t1, fee, spacing, slot0, liquidity = (
            _decode(types, r) for (_, types), r in zip(HEADER, row, strict=True)
        )
        headers.append((pool, t0[0], t1[0], fee[0], spacing[0], slot0, liquidity[0]))
    word_calls = [
        (k, word)
        for k, (_, _, _, _, spacing, slot0, _) in enumerate(headers)
        for word in word_range(spacing)
        if words_around is None or abs(word - ((slot0[1] // spacing) >> 8)) <= words_around
    ]
    words = await call_batch([
        _call(headers[k][0], TICK_BITMAP + encode(["int16"], [w]).hex(), block)
        for k, w in word_calls
    ])  # fmt: skip
    bitmaps: list[dict[int, int]] = [{} for _ in pools]
    for (k, word), result in zip(word_calls, words, strict=True):
        (bits,) = _decode(["uint256"], result)
        if bits:
            bitmaps[k][word] = bits
    tick_calls = [
        (k, (word * 256 + bit) * headers[k][4])
        for k, bitmap in enumerate(bitmaps)
        for word, bits in bitmap.items()
        for bit in range(256)
        if bits >> bit & 1
    ]
    infos = await call_batch([
        _call(headers[k][0], TICKS + encode(["int24"], [t]).hex(), block) for k, t in tick_calls
    ])  # fmt: skip
    ticks: list[dict[int, tuple[int, int]]] = [{} for _ in pools]
    for (k, tick), result in zip(tick_calls, infos, strict=True):
        gross, net, *_ = _decode(TICK_INFO, result)
        ticks[k][tick] = (gross, net)
    return [
        V3Pool(
            to_checksum_address(pool),
            to_checksum_address(t0),
            to_checksum_address(t1),
            fee,
            spacing,
            slot0[0],
            slot0[1],
            liquidity,
            ticks[k],
            bitmaps[k],
        )
        for k, (pool, t0, t1, fee, spacing, slot0, liquidity) in enumerate(headers)
    ]


def http_batch_caller(url: str, chunk: int = 500, timeout: float = 60.0) -> BatchCall:
    """A BatchCall over plain HTTP JSON-RPC (devnet tools and tests; services use RpcPool)."""

    async def call_batch(calls: list[tuple[str, list[Any]]]) -> list[Any]:
        out: list[Any] = []
        async with httpx.AsyncClient(timeout=timeout) as client:
            for start in range(0, len(calls), chunk):
                body = [
                    {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                    for i, (method, params) in enumerate(calls[start : start + chunk])
                ]
                replies = {r["id"]: r for r in (await client.post(url, json=body)).json()}
                for i in range(len(body)):
                    reply = replies[i]
                    error = reply.get("error")
                    out.append(RuntimeError(str(error)) if error else reply["result"])
        return out

    return call_batch
