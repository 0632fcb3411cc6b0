"""Read the pools of every configured factory from the chain, at one block, in batches.

`allPairsLength`/`allPairs(i)` of each factory, then `token0`/`token1`/`getReserves` of every
pair, then `decimals`/`symbol` of every token, as JSON-RPC batches of `eth_call` at `latest`
(HyperEVM serves no other tag). The reserves, the only part that moves, are read in one checked
batch (mev_common.chain.latest) that names its block, so the snapshot is consistent and later
`Sync` logs apply on top of it; a pair list that grew meanwhile is caught by PairCreated logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from mev_common.amm.v2 import V2Pool
from mev_common.chain.contracts import Dex, TokenInfo
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.latest import LatestRead, at_latest, read_at_latest
from mev_common.chain.rpc_pool import RpcPool


def _selector(signature: str) -> str:
    return "0x" + function_signature_to_4byte_selector(signature).hex()


ALL_PAIRS_LENGTH = _selector("allPairsLength()")
ALL_PAIRS = _selector("allPairs(uint256)")
TOKEN0 = _selector("token0()")
TOKEN1 = _selector("token1()")
GET_RESERVES = _selector("getReserves()")
DECIMALS = _selector("decimals()")
SYMBOL = _selector("symbol()")


def _raw(result: Any) -> bytes:
    if isinstance(result, Exception):
        raise result
    return bytes.fromhex(str(result)[2:])


async def fetch_pools(
    rpc: RpcPool, dexes: Sequence[Dex]
) -> tuple[list[tuple[V2Pool, str]], LatestRead]:
    """Every pair of every DEX with its reserves, tagged with the DEX name, and the block the
    reserves were read at."""
    lengths = await rpc.call_batch([at_latest(d.factory, ALL_PAIRS_LENGTH) for d in dexes])
    listing: list[tuple[Dex, int]] = []
    for dex, length in zip(dexes, lengths, strict=True):
        (n,) = decode(["uint256"], _raw(length))
        listing += [(dex, i) for i in range(n)]
    addresses = await rpc.call_batch(
        [at_latest(dex.factory, ALL_PAIRS + encode(["uint256"], [i]).hex()) for dex, i in listing]
    )  # fmt: skip
    pairs = [to_checksum_address(decode(["address"], _raw(a))[0]) for a in addresses]
    calls = []
    for pair in pairs:
        calls += [at_latest(pair, TOKEN0), at_latest(pair, TOKEN1), at_latest(pair, GET_RESERVES)]
    read = await read_at_latest(lambda batch: rpc.call_batch(batch, chunk=len(batch)), calls)
    answers = read.results
    pools = []
    for k, ((dex, _), pair) in enumerate(zip(listing, pairs, strict=True)):
        token0, token1, reserves = answers[3 * k : 3 * k + 3]
        (t0,) = decode(["address"], _raw(token0))
        (t1,) = decode(["address"], _raw(token1))
        r0, r1, _ = decode(["uint112", "uint112", "uint32"], _raw(reserves))
        pool = V2Pool(pair, to_checksum_address(t0), to_checksum_address(t1), r0, r1, dex.fee_bps)
        pools.append((pool, dex.name))
    return pools, read


async def fetch_tokens(rpc: RpcPool, tokens: Sequence[str]) -> dict[str, TokenInfo]:
    """Decimals and symbol of each token; a token without `decimals()` is left out (and so is
    never traded: we cannot price it)."""
    calls = []
    for token in tokens:
        calls += [at_latest(token, DECIMALS), at_latest(token, SYMBOL)]
    answers = await rpc.call_batch(calls)
    out: dict[str, TokenInfo] = {}
    for k, token in enumerate(tokens):
        decimals, symbol = answers[2 * k], answers[2 * k + 1]
        try:
            (dec,) = decode(["uint8"], _raw(decimals))
        except (RpcError, ValueError, TypeError):
            continue
        try:
            (sym,) = decode(["string"], _raw(symbol))
        except Exception:  # some tokens return bytes32 or nothing: the symbol is cosmetic
            sym = token[:8]
        out[token] = TokenInfo(token, str(sym), int(dec))
    return out
