"""Detect on the devnet with real NATS, real ingest and real anvil (mining by hand).

An imbalancing user swap, while pending, yields a backrun opportunity; once mined, block
opportunities follow. Each opportunity's amounts and profit equal this test's own computation
from the chain's reserves (and, for the backrun, the victim applied by the test's own math).
A reorg (anvil snapshot/revert) rewinds detect's state: the opportunities after it still match
the chain exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Block, Opportunity
from mev_common.messages import decode as decode_message
from mev_ops.devnet.anvil import AnvilNode, free_port
from mev_ops.pipeline_status import Samples, parse_metrics, total

from tests.conftest import NatsEndpoint
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import (
    ServiceProcess,
    metric_value,
    node_config,
    pools_block,
    pools_detail,
    stop_all,
)
from tests.support.stream_read import read_until

CHAIN = 31337
SWAP = (
    "0x"
    + function_signature_to_4byte_selector(
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
    ).hex()
)
GET_RESERVES = "0x" + function_signature_to_4byte_selector("getReserves()").hex()
QUOTE_SINGLE = function_signature_to_4byte_selector(
    "quoteExactInputSingle((address,address,uint256,uint24,uint160))"
)


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Uniswap V2 at 0.3 %, written here independently of the code under test."""
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


class Chain:
    def __init__(self, node: AnvilNode, deployment: dict[str, Any]) -> None:
        self.url = node.rpc_url
        self.deployment = deployment
        self.pairs = {p["address"]: p for p in deployment["pairs"]}

    async def rpc(self, method: str, params: list[Any]) -> Any:
        async with httpx.AsyncClient() as client:
            reply = (
                await client.post(
                    self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                )
            ).json()
        if "error" in reply:
            raise AssertionError(reply["error"])
        return reply["result"]

    async def reserves(self, pair: str, block: int | str = "latest") -> tuple[int, int]:
        tag = hex(block) if isinstance(block, int) else block
        raw = await self.rpc("eth_call", [{"to": pair, "data": GET_RESERVES}, tag])
        r0, r1, _ = decode(["uint112", "uint112", "uint32"], bytes.fromhex(raw[2:]))
        return r0, r1

    async def oriented(self, pair: str, token_in: str, block: int | str) -> tuple[int, int]:
        r0, r1 = await self.reserves(pair, block)
        return (r0, r1) if self.pairs[pair]["token0"] == token_in else (r1, r0)

    async def v3_quote(self, pool: str, token_in: str, amount: int, block: int) -> int:
        """The V3 pool's exact output at `block`, as the devnet's own QuoterV2 says it (the
        pool's swap run and reverted: independent of detect's V3 math)."""
        spec = next(p for p in self.deployment["v3_pools"] if p["address"] == pool)
        quoter = next(d for d in self.deployment["v3_dexes"] if d["name"] == spec["dex"])["quoter"]
        token_out = spec["token1"] if spec["token0"] == token_in else spec["token0"]
        args = encode(["(address,address,uint256,uint24,uint160)"],
                      [(token_in, token_out, amount, spec["fee"], 0)])  # fmt: skip
        data = "0x" + (QUOTE_SINGLE + args).hex()
        raw = await self.rpc("eth_call", [{"to": quoter, "data": data}, hex(block)])
        return int(decode(["uint256"], bytes.fromhex(raw[2:66]))[0])

    def token(self, symbol: str) -> str:
        return str(self.deployment["tokens"][symbol]["address"])

    def dex(self, name: str) -> dict[str, Any]:
        return next(d for d in self.deployment["dexes"] if d["name"] == name)

    def pair(self, dex: str, a: str, b: str) -> str:
        ta, tb = self.token(a), self.token(b)
        return next(
            p["address"]
            for p in self.deployment["pairs"]
            if p["dex"] == dex and {p["token0"], p["token1"]} == {ta, tb}
        )

    async def send_swap(self, dex: str, path: list[str], amount_in: int) -> str:
        user = self.deployment["users"][0]
        user = user["address"] if isinstance(user, dict) else user
        data = (
            SWAP
            + encode(
                ["uint256", "uint256", "address[]", "address", "uint256"],
                [amount_in, 0, [self.token(s) for s in path], user, 2**40],
            ).hex()
        )
        tx = {"from": user, "to": self.dex(dex)["router"], "data": data, "gas": hex(400_000)}
        return str(await self.rpc("eth_sendTransaction", [tx]))

    async def mine(self) -> int:
        await self.rpc("anvil_mine", ["0x1"])
        return int(await self.rpc("eth_blockNumber", []), 16)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilNode, Path]]:
    base = tmp_path_factory.mktemp("detect-devnet")
    node, _ = deployed_anvil(base, CHAIN, 1, base / "bot.key", base / "deployment.json")
    httpx.post(
        node.rpc_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "evm_setAutomine", "params": [False]},
    )
    try:
        yield node, base / "deployment.json"
    finally:
        node.stop()


@pytest.fixture(scope="module")
def pipeline(
    devnet: tuple[AnvilNode, Path],
    nats_server: NatsEndpoint,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[ServiceProcess]]:
    node, deployment = devnet
    tmp = tmp_path_factory.mktemp("detect-pipeline")
    config = node_config(tmp, nats_server.url, CHAIN, node.rpc_url, deployment)
    procs = [ServiceProcess(n, config, tmp / f"{n}.log").start() for n in ("ingest", "detect")]
    try:
        for proc in procs:
            proc.wait_health(200, timeout_s=30)
        yield procs
    finally:
        stop_all(procs)


async def opportunities(bus: Bus, want: Any, timeout_s: float = 15.0) -> list[Opportunity]:
    """All opportunities so far; waits until `want(list)` holds."""
    return await read_until(bus, f"mev.{CHAIN}.opportunities.>", Opportunity, want, timeout_s)


async def assert_matches_chain(
    chain: Chain, opp: Opportunity, overrides: dict[str, tuple[int, int]]
) -> None:
    """Recompute every hop from reserves at the opportunity's block (plus `overrides`)."""
    amount = opp.amount_in
    for hop in opp.hops:
        if hop.kind == "v3":  # a V2 victim never touches a V3 pool: the block's state holds
            assert hop.amount_in == amount
            amount = await chain.v3_quote(hop.pool, hop.token_in, amount, opp.block_number)
            assert hop.amount_out == amount, (opp.strategy, hop)
            continue
        if hop.pool in overrides:
            r0, r1 = overrides[hop.pool]
            reserve_in, reserve_out = (
                (r0, r1) if chain.pairs[hop.pool]["token0"] == hop.token_in else (r1, r0)
            )
        else:
            reserve_in, reserve_out = await chain.oriented(hop.pool, hop.token_in, opp.block_number)
        assert hop.amount_in == amount
        amount = amount_out(amount, reserve_in, reserve_out)
        assert hop.amount_out == amount, (opp.strategy, hop)
    assert opp.expected_profit == amount - opp.amount_in > 0
    assert opp.net_profit_wei == opp.expected_profit - opp.gas_estimate * opp.max_fee_per_gas
    assert opp.hops[0].token_in == opp.hops[-1].token_out == opp.profit_token
    assert opp.deadline_block == opp.block_number + 2


async def test_backrun_before_mining_then_block_opportunities_match_chain(
    devnet: tuple[AnvilNode, Path], pipeline: list[ServiceProcess], bus: Bus
) -> None:
    node, deployment_path = devnet
    chain = Chain(node, json.loads(deployment_path.read_text()))
    await chain.mine()
    await asyncio.sleep(1.0)
    weth, usdc = chain.token("WETH"), chain.token("USDC")
    victim_pair = chain.pair("A", "WETH", "USDC")
    before = await chain.reserves(victim_pair)
    size = 60 * 10**18  # a large user swap: pushes DEX A's WETH/USDC price away from DEX B's
    tx_hash = await chain.send_swap("A", ["WETH", "USDC"], size)

    found = await opportunities(bus, lambda ops: any(o.trigger == tx_hash for o in ops))
    backruns = [o for o in found if o.trigger == tx_hash]
    assert backruns, "no backrun for the pending swap"
    assert all(o.strategy == "backrun" and o.victim and o.victim.hash == tx_hash for o in backruns)
    # the victim's effect, by this test's own math
    weth_is_0 = chain.pairs[victim_pair]["token0"] == weth
    r_in, r_out = (before[0], before[1]) if weth_is_0 else (before[1], before[0])
    out = amount_out(size, r_in, r_out)
    post = (r_in + size, r_out - out) if weth_is_0 else (r_out - out, r_in + size)
    pending_block = int(await chain.rpc("eth_blockNumber", []), 16)
    # the first backrun and its follow-ons (detect/follow_on.py: each through a pool of the one
    # before, sized on the state after it) chain; the victim's other backruns are pool-disjoint
    # and each follow-on names the one it was sized behind (simulate stacks it on that one)
    state, chained, behind = {victim_pair: post}, set[str](), None
    for i, opp in enumerate(backruns):
        assert opp.block_number == pending_block
        pools = {h.pool for h in opp.hops}
        if i == 0 or pools & chained:
            await assert_matches_chain(chain, opp, state)
            state, chained = await after_hops(chain, opp, state), chained | pools
            assert opp.follows == behind
            behind = opp.id
        else:
            await assert_matches_chain(chain, opp, {victim_pair: post})
            assert opp.follows is None
    assert any(victim_pair in [h.pool for h in o.hops] for o in backruns)
    assert {h.token_in for o in backruns for h in o.hops} >= {weth, usdc}

    mined = await chain.mine()
    found = await opportunities(
        bus, lambda ops: any(o.block_number == mined and o.strategy != "backrun" for o in ops)
    )
    in_block = [o for o in found if o.block_number == mined and o.strategy != "backrun"]
    assert in_block, "no opportunity after the imbalancing block"
    assert {o.strategy for o in in_block} <= {"cross_dex_arbitrage", "cyclic_arbitrage"}
    for opp in in_block:
        await assert_matches_chain(chain, opp, {})
    # the best block opportunity takes the same cycle as the best backrun, now on chain state
    best_backrun = max(backruns, key=lambda o: o.net_profit_wei)
    best_block = max(in_block, key=lambda o: o.net_profit_wei)
    # the backruns were priced on the victim's effect: the mined block has exactly that state
    assert await chain.reserves(victim_pair) == post
    assert best_backrun.net_profit_wei > 0
    # the missed-profit gauge: the best cycle the block left, net of gas, as published
    samples = detect_metrics(pipeline[1])
    assert total(samples, "mev_bot_residual_wei") == float(best_block.net_profit_wei)
    assert total(samples, "mev_bot_residual_wei_summed_total") >= float(best_block.net_profit_wei)


async def after_hops(
    chain: Chain, opp: Opportunity, state: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """`state` (pair -> reserves) after `opp`'s V2 hops, by their exact amounts."""
    out = dict(state)
    for hop in opp.hops:
        assert hop.kind == "v2"
        r0, r1 = out.get(hop.pool) or await chain.reserves(hop.pool)
        if chain.pairs[hop.pool]["token0"] == hop.token_in:
            out[hop.pool] = (r0 + hop.amount_in, r1 - hop.amount_out)
        else:
            out[hop.pool] = (r0 - hop.amount_out, r1 + hop.amount_in)
    return out


def detect_metrics(proc: ServiceProcess) -> Samples:
    cfg = yaml.safe_load(proc.config.read_text())
    port = cfg["services"]["detect"]["metrics_port"]
    return parse_metrics(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)


async def test_reorg_rewinds_state(
    devnet: tuple[AnvilNode, Path], pipeline: list[ServiceProcess], bus: Bus
) -> None:
    node, deployment_path = devnet
    chain = Chain(node, json.loads(deployment_path.read_text()))
    snapshot = await chain.rpc("evm_snapshot", [])
    await chain.send_swap("B", ["USDC", "WETH"], 400_000 * 10**6)
    doomed = await chain.mine()
    await opportunities(bus, lambda ops: any(o.block_number == doomed for o in ops))
    assert await chain.rpc("evm_revert", [snapshot]) is True
    replaced = await chain.mine()  # same height, another (empty) block
    assert replaced == doomed
    await asyncio.sleep(1.0)
    await chain.send_swap("B", ["USDC", "WETH"], 800_000 * 10**6)
    after = await chain.mine()
    found = await opportunities(bus, lambda ops: any(o.block_number == after for o in ops))
    fresh = [o for o in found if o.block_number == after and o.strategy != "backrun"]
    assert fresh
    for opp in fresh:  # stale reserves from the dropped block would break these equalities
        await assert_matches_chain(chain, opp, {})
    # the block moved B's WETH/USDC pair only, so every opportunity goes through it: with the
    # dropped block's B swap still in detect's state (B moved twice, not once), their amounts
    # would differ from the chain's above. (Which other pool pays best, a V2 pair or one of
    # the V3 pools, is the search's business: V3 pools near the price often do.)
    moved = chain.pair("B", "WETH", "USDC")
    assert all(moved in {h.pool for h in o.hops} for o in fresh)
    # ingest announced the replacement block as a reorg at the fork height
    sub = await bus.js.subscribe(subjects.blocks(CHAIN), ordered_consumer=True)
    blocks = []
    try:
        while True:
            try:
                blocks.append(decode_message(Block, (await sub.next_msg(timeout=0.5)).data))
            except TimeoutError:
                break
    finally:
        await sub.unsubscribe()
    assert [b.number for b in blocks if b.reorg] == [doomed]


async def test_two_replicas_take_each_pending_tx_once_and_publish_each_opportunity_once(
    devnet: tuple[AnvilNode, Path], pipeline: list[ServiceProcess], bus: Bus
) -> None:
    node, deployment_path = devnet
    chain = Chain(node, json.loads(deployment_path.read_text()))
    first = pipeline[1]
    # the same config with ports of its own (an offset could hit a port that is taken)
    second_config = first.config.with_name("detect-2.yaml")
    cfg = yaml.safe_load(first.config.read_text())
    # it knows it has a peer: it also reads the whole mempool (services/detect/peers.py)
    cfg["services"]["detect"] = {
        "health_port": free_port(), "metrics_port": free_port(), "replicas": 2
    }  # fmt: skip
    second_config.write_text(yaml.safe_dump(cfg))
    second = ServiceProcess(
        "detect",
        second_config,
        first.log_path.with_name("detect-2.log"),
        env={"MEV_INSTANCE": "detect-2"},
    ).start()
    try:
        second.wait_health(200, timeout_s=30)
        # both replicas loaded and at one new head: a replica without a head (automine is off
        # here, and a fresh replica's snapshot sets none) skips its share of the pending swaps
        # (which replica pulls the first swap was a race)
        head = await chain.mine()
        for _ in range(100):
            if all(pools_block(p) == head for p in (first, second)):
                break
            await asyncio.sleep(0.1)
        assert [pools_block(p) for p in (first, second)] == [head, head]
        consumed = 'mev_bot_messages_consumed_total{result="ok",stage="detect"}'
        baseline = sum(metric_value(p, consumed) for p in (first, second))
        hashes = []
        # the first swap is large enough to leave a backrun whatever state the module's earlier
        # tests left (run alone, on balanced pools, a 1-WETH swap left none after gas)
        for i, weth in enumerate([60, *range(2, 13)]):
            hashes.append(await chain.send_swap("AB"[i % 2], ["WETH", "USDC"], weth * 10**18))
        after_total = baseline
        for _ in range(100):
            after_total = sum(metric_value(p, consumed) for p in (first, second))
            if after_total >= baseline + len(hashes):
                break
            await asyncio.sleep(0.2)
        # the first swap's backrun: published, or withdrawn unpublished by the replica that
        # reads ahead (the next swap, through the other DEX's pool at the same tip, outbids it:
        # one detect would publish it and withdraw it when that swap came)
        found = await opportunities(
            bus,
            lambda ops: (
                hashes[0] in {o.trigger for o in ops}
                or pools_detail(second).get("withdrawn_unpublished", 0) > 0
            ),
        )
        reader = pools_detail(second)
        last_seq = (await bus.js.stream_info("MEMPOOL")).state.last_seq
    finally:
        second.stop()
        await chain.mine()
    backruns = [o for o in found if o.trigger in hashes]
    # the first swap was alone; later ones are crowded by the earlier pending swaps on the same
    # pools (all at the same tip, so ordered ahead of a backrun) and are not backrun
    assert hashes[0] in {o.trigger for o in backruns} or reader.get("withdrawn_unpublished", 0) > 0
    assert len({o.id for o in backruns}) == len(backruns)  # each stored once
    # the durable consumer hands each pending tx to exactly one replica
    assert after_total == baseline + len(hashes)
    # the second replica read every swap, its peer's share too, and never searched one its
    # reader had not reached
    assert reader["read_seq"] == last_seq and reader["reader_behind"] == 0
