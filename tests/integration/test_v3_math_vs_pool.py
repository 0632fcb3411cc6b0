"""Our V3 pool swap equals the real UniswapV3Pool (npm v3-core 1.0.1) to the wei, 2,000+ cases.

Three pools (fee 500, 3000, 10000; prices near 1e-9, 1 and 2e4) get dozens of random positions
each, many narrow, so swaps cross many initialized ticks and many empty bitmap words. Each case
is answered by the pool itself: V3Probe calls `pool.swap` and reverts inside the callback with
the amounts and slot0/liquidity after the swap (eth_call; nothing is kept). Cases: both
directions, exact input and exact output, amounts from 1 wei to far beyond the liquidity (those
stop at the price limit: liquidity exhausted), random price limits. Calls go as JSON-RPC batches.
Our pool is built by replaying the same mints through `modify_position`, so its tick map is
checked against the chain too (tick, liquidity; every answer depends on liquidityNet).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from mev_common.amm.v3 import TICK_SPACING, V3Pool
from mev_common.amm.v3_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
)
from mev_ops.devnet.anvil import AnvilNode, free_port, start_anvil
from mev_ops.devnet.artifacts import load_artifact
from mev_ops.devnet.deploy import devnet_account
from mev_ops.devnet.sender import Sender, create_address, send_bulk
from web3 import Web3

CHAIN = 31337
CASES = 2100
SUPPLY = 10**40
POOLS = ((500, -207_000), (3000, 0), (10000, 99_000))  # (fee, initial tick)
POSITIONS = 40


def selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


PROBE = selector("probe(address,bool,int256,uint160)")
OUTCOME = "(int256,int256,uint160,int24,uint128)"


def random_positions(rng: random.Random, tick: int, spacing: int) -> list[tuple[int, int, int]]:
    """Ranges around `tick`: many narrow (a few spacings), some wide, one near-full range."""
    out = []
    low_bound, high_bound = -(-MIN_TICK // spacing) * spacing, MAX_TICK // spacing * spacing
    for k in range(POSITIONS):
        width = rng.choice((1, 2, 3, 5, 8, 20, 60, 300)) if k else high_bound // spacing - 1
        centre = tick // spacing + rng.randint(-400, 400) if k else 0
        lower = max(low_bound // spacing, centre - rng.randint(1, width)) * spacing
        upper = min(high_bound // spacing, centre + rng.randint(1, width)) * spacing
        out.append((lower, upper, 10 ** rng.randint(15, 21) * rng.randint(1, 9)))
    return out


@pytest.fixture(scope="module")
def pools(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AnvilNode, str, list[V3Pool]]]:
    base: Path = tmp_path_factory.mktemp("v3math")
    node = start_anvil(free_port(), CHAIN, None, base)
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        yield node, *_deploy(w3, random.Random(13))
    finally:
        node.stop()


def _deploy(w3: Web3, rng: random.Random) -> tuple[str, list[V3Pool]]:
    me = Sender(w3, devnet_account(0), CHAIN)
    token = load_artifact("DevToken")
    txs: list[dict[str, Any]] = []
    tokens = []
    for name in ("TA", "TB"):
        tx, address = me.unsigned_deploy(token, (name, name, 18, SUPPLY), 2_000_000)
        txs.append(tx)
        tokens.append(address)
    t0, t1 = sorted(tokens, key=lambda a: int(a, 16))
    tx, factory = me.unsigned_deploy(load_artifact("UniswapV3Factory"), (), 6_500_000)
    txs.append(tx)
    tx, probe = me.unsigned_deploy(load_artifact("V3Probe"), (), 2_000_000)
    txs.append(tx)
    transfer = selector("transfer(address,uint256)")
    for t in (t0, t1):
        txs.append(
            me.unsigned(t, transfer + encode(["address", "uint256"], [probe, SUPPLY]), 10**5)
        )
    create = selector("createPool(address,address,uint24)")
    initialize = selector("initialize(uint160)")
    mint = selector("mint(address,int24,int24,uint128)")
    models = []
    for fee, tick in POOLS:
        txs.append(me.unsigned(factory, create + encode(["address", "address", "uint24"],
                                                        [t0, t1, fee]), 6_000_000))  # fmt: skip
        # the pool is the factory's next CREATE2 child; read its address after mining
        models.append((fee, tick))
    send_bulk(w3, txs)
    get_pool = selector("getPool(address,address,uint24)")
    txs, built = [], []
    for fee, tick in models:
        raw = w3.eth.call({"to": factory, "data": get_pool + encode(
            ["address", "address", "uint24"], [t0, t1, fee])})  # fmt: skip
        (address,) = decode(["address"], raw)
        address = Web3.to_checksum_address(address)
        sqrt_price = get_sqrt_ratio_at_tick(tick) + rng.randint(0, 10**6)
        txs.append(me.unsigned(address, initialize + encode(["uint160"], [sqrt_price]), 200_000))
        spacing = TICK_SPACING[fee]
        pool = V3Pool(address, t0, t1, fee, spacing, sqrt_price, tick, 0)
        for lower, upper, amount in random_positions(rng, tick, spacing):
            args = encode(["address", "int24", "int24", "uint128"], [address, lower, upper, amount])
            txs.append(me.unsigned(probe, mint + args, 1_500_000))
            pool = pool.modify_position(lower, upper, amount)
        built.append(pool)
    send_bulk(w3, txs)
    assert create_address(me.address, 3) == probe
    return probe, built


def random_case(rng: random.Random, pool: V3Pool) -> tuple[bool, int, int]:
    zero_for_one = rng.random() < 0.5
    exact_in = rng.random() < 0.5
    amount = int(10 ** rng.uniform(0, 26))  # 1 wei to far beyond any range
    if rng.random() < 0.1:
        amount = 10**36  # certainly exhausts every range on that side
    if rng.random() < 0.35:  # a price limit somewhere on the way
        tick = pool.tick + rng.randint(1, 3000) * (-1 if zero_for_one else 1)
        limit = get_sqrt_ratio_at_tick(max(MIN_TICK + 1, min(MAX_TICK - 1, tick)))
        limit += rng.randint(-1000, 1000)
    else:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    return zero_for_one, amount if exact_in else -amount, limit


def test_v3_swap_equals_the_pool_to_the_wei(pools: tuple[AnvilNode, str, list[V3Pool]]) -> None:
    node, probe, models = pools
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    pool_abi = load_artifact("UniswapV3Pool").abi
    for model in models:  # the replayed mints give the chain's own state
        contract = w3.eth.contract(address=model.address, abi=pool_abi)
        sqrt_price, tick, *_ = contract.functions.slot0().call()
        assert (sqrt_price, tick) == (model.sqrt_price_x96, model.tick)
        assert contract.functions.liquidity().call() == model.liquidity
    rng = random.Random(2026)
    cases = []
    while len(cases) < CASES:
        pool = rng.choice(models)
        zero_for_one, amount, limit = random_case(rng, pool)
        valid = (
            limit < pool.sqrt_price_x96 if zero_for_one else limit > pool.sqrt_price_x96
        ) and MIN_SQRT_RATIO < limit < MAX_SQRT_RATIO
        if valid:
            cases.append((pool, zero_for_one, amount, limit))
    body = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [
            {"to": probe, "gas": hex(100_000_000), "data": "0x" + (PROBE + encode(
                ["address", "bool", "int256", "uint160"],
                [pool.address, zero_for_one, amount, limit])).hex()},
            "latest"]}
        for i, (pool, zero_for_one, amount, limit) in enumerate(cases)
    ]  # fmt: skip
    replies: dict[int, Any] = {}
    for start in range(0, len(body), 300):
        for reply in httpx.post(node.rpc_url, json=body[start : start + 300], timeout=120).json():
            replies[reply["id"]] = reply
    crossed = exhausted = exact_out = 0
    for i, (pool, zero_for_one, amount, limit) in enumerate(cases):
        assert "error" not in replies[i], (i, replies[i])
        (chain,) = decode([OUTCOME], bytes.fromhex(replies[i]["result"][2:]))
        ours = pool.swap(zero_for_one, amount, limit)
        got = (ours.amount0, ours.amount1, ours.sqrt_price_x96, ours.tick, ours.liquidity)
        assert got == tuple(chain), (i, pool.fee, zero_for_one, amount, limit)
        crossed += ours.ticks_crossed >= 5
        exhausted += ours.sqrt_price_x96 == limit and ours.liquidity == 0
        exact_out += amount < 0
    # the cases covered what they claim to
    assert crossed >= 300 and exhausted >= 100 and exact_out >= 800, (crossed, exhausted, exact_out)
