"""Our integer V2 math equals the deployed Router02 to the wei, over 1,000+ random cases.

Router02 on the devnet answers `getAmountOut`/`getAmountIn` (its library, pure) for random
reserves and amounts, and `getAmountsOut` over real multi-hop paths of the devnet's pairs at
their current reserves. Calls go as JSON-RPC batches to keep the test fast.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from mev_common.amm.v2 import V2Error, get_amount_in, get_amount_out, get_amounts_out
from mev_ops.devnet.anvil import AnvilNode

from tests.support.devnet_state import deployed_anvil

CHAIN = 31337
CASES = 1200


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, dict[str, Any]]]:
    base: Path = tmp_path_factory.mktemp("v2math")
    node, deployment = deployed_anvil(base, CHAIN, 1, base / "bot.key", base / "deployment.json")
    try:
        yield node, deployment
    finally:
        node.stop()


def selector(signature: str) -> str:
    return "0x" + function_signature_to_4byte_selector(signature).hex()


def batch_call(url: str, to: str, datas: list[str]) -> list[bytes | None]:
    """eth_call each data; None where the contract reverted."""
    body = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "eth_call",
            "params": [{"to": to, "data": d}, "latest"],
        }
        for i, d in enumerate(datas)
    ]
    replies = {r["id"]: r for r in httpx.post(url, json=body, timeout=60).json()}
    return [
        None if "error" in replies[i] else bytes.fromhex(replies[i]["result"][2:])
        for i in range(len(datas))
    ]


def random_case(rng: random.Random) -> tuple[int, int, int]:
    """Reserves from dust to uint112 max, amounts from 1 wei to beyond the reserve."""
    reserve_in = rng.choice(
        [rng.randint(1, 10**6), rng.randint(10**6, 10**24), rng.randint(10**24, 2**112 - 1)]
    )
    reserve_out = rng.choice(
        [rng.randint(1, 10**6), rng.randint(10**6, 10**24), rng.randint(10**24, 2**112 - 1)]
    )
    amount = rng.choice([rng.randint(1, 1000), rng.randint(1, reserve_in), rng.randint(1, 2**112)])
    return amount, reserve_in, reserve_out


def ours(fn: Any, *args: int) -> int | None:
    try:
        return int(fn(*args))
    except V2Error:
        return None


def test_get_amount_out_and_in_match_router_library(
    devnet: tuple[AnvilNode, dict[str, Any]],
) -> None:
    node, deployment = devnet
    router = deployment["dexes"][0]["router"]
    rng = random.Random(20261125)
    cases = [random_case(rng) for _ in range(CASES)]
    out_sel = selector("getAmountOut(uint256,uint256,uint256)")
    in_sel = selector("getAmountIn(uint256,uint256,uint256)")
    args = [encode(["uint256"] * 3, list(c)).hex() for c in cases]
    outs = batch_call(node.rpc_url, router, [out_sel + a for a in args])
    # for getAmountIn, ask for an output below the reserve_out so most cases are valid
    in_cases = [(max(1, (c[0] % c[2])), c[1], c[2]) for c in cases]
    in_args = [encode(["uint256"] * 3, list(c)).hex() for c in in_cases]
    ins = batch_call(node.rpc_url, router, [in_sel + a for a in in_args])

    matched_out = matched_in = 0
    for case, raw in zip(cases, outs, strict=True):
        expected = None if raw is None else decode(["uint256"], raw)[0]
        assert ours(get_amount_out, *case) == expected, case
        matched_out += expected is not None
    for case, raw in zip(in_cases, ins, strict=True):
        expected = None if raw is None else decode(["uint256"], raw)[0]
        assert ours(get_amount_in, *case) == expected, case
        matched_in += expected is not None
    assert matched_out >= CASES * 9 // 10  # most cases are valid, not reverts compared
    assert matched_in >= CASES // 2


def test_get_amounts_out_over_real_paths(devnet: tuple[AnvilNode, dict[str, Any]]) -> None:
    node, deployment = devnet
    tokens = {t["address"]: t for t in deployment["tokens"].values()}
    pair_sel = selector("getReserves()")
    for dex in deployment["dexes"]:
        pairs = [p for p in deployment["pairs"] if p["dex"] == dex["name"]]
        reserves = {}
        for pair in pairs:
            raw = httpx.post(
                node.rpc_url,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_call",
                    "params": [{"to": pair["address"], "data": pair_sel}, "latest"],
                },
            ).json()
            r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw["result"][2:]))
            reserves[(pair["token0"], pair["token1"])] = (r0, r1)
            reserves[(pair["token1"], pair["token0"])] = (r1, r0)
        rng = random.Random(dex["name"])
        paths = []
        for _ in range(150):
            start = rng.choice(list(tokens))
            path = [start]
            for _hop in range(rng.randint(1, 3)):
                nexts = [b for (a, b) in reserves if a == path[-1] and b not in path]
                if not nexts:
                    break
                path.append(rng.choice(sorted(nexts)))
            if len(path) >= 2:
                paths.append((rng.randint(1, 10 ** tokens[start]["decimals"] * 50), path))
        sel = selector("getAmountsOut(uint256,address[])")
        datas = [sel + encode(["uint256", "address[]"], [a, p]).hex() for a, p in paths]
        answers = batch_call(node.rpc_url, dex["router"], datas)
        for (amount, path), raw in zip(paths, answers, strict=True):
            assert raw is not None
            expected = list(decode(["uint256[]"], raw)[0])
            hops = [(*reserves[(a, b)], dex["fee_bps"]) for a, b in itertools.pairwise(path)]
            assert get_amounts_out(amount, hops) == expected
        assert len(paths) >= 140
