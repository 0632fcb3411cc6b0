"""The simulate service end to end: a real `python -m services.simulate` on real NATS and a
real anvil with the devnet deployment (mining by hand).

Opportunities are crafted here and published on `mev.<chain>.opportunities.<strategy>`:
- a profitable 2-hop cycle becomes exactly one bundle on `mev.<chain>.bundles`, whose profit is
  this test's own V2 math, whose calldata (decoded with the Executor's ABI, not the code under
  test) is the route, and whose gas is what the chain charges when the bundle is mined;
- an unprofitable one and a stale one (block behind the head) are dropped and counted by
  reason, with nothing published; a payload that does not decode is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_common import subjects
from mev_common.bus import Bus
from mev_common.messages import Bundle, DeadLetter, Opportunity, PendingTx
from mev_common.messages import decode as decode_message
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import NatsEndpoint
from tests.integration.devnet.conftest import Devnet
from tests.support.stack import ServiceProcess
from tests.support.submit_world import CHAIN, GWEI, TWO_HOPS, WETH, config_for, unbalance
from tests.support.submit_world import manual_mining_devnet as _devnet

pytestmark = pytest.mark.timeout(180)
STRATEGY = "cross_dex_arbitrage"
MIN_PROFIT = 10**14  # the strategy minimum in tests.support.stack's config: 0.0001 ether
FEE_CAP = 20 * GWEI  # the opportunity's fee cap, below the strategy's 50 gwei
HOPS = 2
FIRST_TOUCH_PER_HOP = 25_000  # decision.py's chain surcharge per pair (documented there)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from _devnet(tmp_path_factory.mktemp("simulate-service-devnet"))


def opportunity(devnet: Devnet, opp_id: str, block: int, amount_in: int) -> Opportunity:
    tokens = devnet.deployment["tokens"]
    hops = []
    amount = amount_in
    for dex, a, b in TWO_HOPS:
        out = devnet.expected_out([(dex, a, b)], amount)
        hops.append(
            {"pool": devnet.pair(dex, a, b)["address"], "token_in": tokens[a]["address"],
             "token_out": tokens[b]["address"], "fee_bps": 30, "amount_in": amount,
             "amount_out": out}
        )  # fmt: skip
        amount = out
    return Opportunity.model_validate(
        {"id": opp_id, "chain_id": CHAIN, "strategy": STRATEGY, "trigger": "0x" + "ab" * 32,
         "block_number": block, "block_hash": devnet.w3.eth.get_block(block)["hash"].to_0x_hex(),
         "hops": hops, "amount_in": amount_in, "profit_token": tokens["WETH"]["address"],
         "expected_profit": amount - amount_in, "max_fee_per_gas": FEE_CAP}
    )  # fmt: skip


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(proc: ServiceProcess) -> Samples:
    """Every sample the service exports, keyed by (name, sorted labels)."""
    port = yaml.safe_load(proc.config.read_text())["services"]["simulate"]["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def published(bus: Bus, subject: str) -> list[Any]:
    """Every message on `subject` so far (an ordered consumer from the stream's start)."""
    sub = await bus.js.subscribe(subject, ordered_consumer=True)
    found = []
    try:
        while True:
            try:
                found.append(await sub.next_msg(timeout=0.5))
            except TimeoutError:
                return found
    finally:
        await sub.unsubscribe()


async def test_an_opportunity_becomes_one_exact_bundle_and_the_rest_are_counted(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    unbalance(devnet)  # mines the block simulate forks at: WETH is cheap on B
    head = int(devnet.w3.eth.block_number)
    config = config_for(
        devnet, nats_server.url, tmp_path,
        performance={"decision_timeout_ms": 10_000},  # a loaded machine must not make it stale
        simulate={"reference_sample_rate": 0},  # no py-evm rerun in the background
    )  # fmt: skip
    proc = ServiceProcess("simulate", config, tmp_path / "simulate.log").start()
    try:
        proc.wait_health(200, timeout_s=60)
        before = samples(proc)
        good = opportunity(devnet, "opp-good", head, 5 * WETH)
        small = opportunity(devnet, "opp-small", head, 10**15)
        stale = opportunity(devnet, "opp-stale", head - 3, 5 * WETH)
        profit = good.expected_profit  # this test's V2 math on the head's reserves
        # the small one gains, but less than 100k gas at the fee cap: it cannot pay for itself
        assert profit > 10**17 and 0 < small.expected_profit < 100_000 * FEE_CAP
        subject = subjects.opportunities(CHAIN, STRATEGY)
        # the small one first: after the good one's bundle it is `superseded` (same pool)
        for opp in (small, good, stale):
            await bus.publish(subject, opp, msg_id=opp.id, trace=opp.id, seen_ns=time.time_ns())
        await bus.js.publish(subject, b"{not json", headers={"Nats-Msg-Id": "opp-junk"})

        deadline = time.monotonic() + 60
        while True:
            now = samples(proc)
            done = value(now, "mev_bot_transactions_processed_total", stage="simulate")
            dead = value(now, "mev_bot_dead_letters_total", stage="simulate")
            if (
                done - value(before, "mev_bot_transactions_processed_total", stage="simulate") >= 3
                and dead >= 1
            ):
                break
            assert time.monotonic() < deadline, proc.logs()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # anything published late would show below

        def delta(name: str, **labels: str) -> float:
            return value(now, name, **labels) - value(before, name, **labels)

        assert delta("mev_bot_transactions_processed_total", stage="simulate") == 3
        assert delta("mev_bot_simulations_total", strategy=STRATEGY, result="published") == 1
        assert delta("mev_bot_simulations_total", strategy=STRATEGY, result="unprofitable") == 1
        assert delta("mev_bot_simulations_total", strategy=STRATEGY, result="stale_not_head") == 1
        assert delta("mev_bot_stale_dropped_total") == 1
        assert delta("mev_bot_dead_letters_total", stage="simulate") == 1
        [letter] = await published(bus, subjects.dead(CHAIN, "simulate"))
        assert decode_message(DeadLetter, letter.data).payload_prefix == "{not json"

        [msg] = await published(bus, subjects.bundles(CHAIN))
        assert msg.headers["Nats-Msg-Id"] == "bundle:opp-good"
        bundle = decode_message(Bundle, msg.data)
        tokens = devnet.deployment["tokens"]
        weth = tokens["WETH"]["address"]
        assert (bundle.id, bundle.opportunity_id, bundle.strategy) == (
            "bundle:opp-good",
            "opp-good",
            STRATEGY,
        )
        assert (bundle.block_number, bundle.block_hash) == (head, good.block_hash)
        assert (bundle.to, bundle.profit_token) == (devnet.executor.address, weth)
        assert bundle.simulated_profit == profit
        assert bundle.max_fee_per_gas == FEE_CAP

        # the calldata, decoded with the Executor's own ABI, is the route with the bundle's floor
        fn, args = devnet.executor.decode_function_input(bundle.data)
        assert fn.fn_name == "execute"
        route = [
            (devnet.pair(dex, a, b)["address"], tokens[a]["address"], tokens[b]["address"], 30)
            for dex, a, b in TWO_HOPS
        ]
        assert [
            (h["pair"], h["tokenIn"], h["tokenOut"], h["feeBps"]) for h in args["hops"]
        ] == route
        assert (args["amountIn"], args["minProfit"], args["flash"]) == (
            5 * WETH,
            bundle.min_profit,
            True,
        )

        # mined for real in the next block (one second later, the env simulate assumed): the
        # chain charges the simulated gas and pays the simulated profit, to the wei
        executor = devnet.executor.address
        balance = devnet.balance("WETH", executor)
        ts = devnet.w3.eth.get_block(head)["timestamp"]
        devnet.rpc("evm_setNextBlockTimestamp", [ts + 1])
        tx = devnet.bot().send(executor, bundle.data, bundle.gas_limit)
        devnet.rpc("evm_mine", [])
        receipt = devnet.w3.eth.get_transaction_receipt(tx)
        assert (receipt["status"], receipt["blockNumber"]) == (1, head + 1)
        assert receipt["gasUsed"] == bundle.simulated_gas_used
        assert devnet.balance("WETH", executor) - balance == profit

        # money rules (decision.py's docstring), from the chain's gas figure
        # The gas limit comes from the measuring run (minProfit 0): the same execution, minus
        # 12 gas of calldata for each non-zero byte of the final minProfit word (16 vs 4).
        nonzero = sum(1 for byte in bundle.min_profit.to_bytes(32, "big") if byte)
        measured = receipt["gasUsed"] - 12 * nonzero
        assert bundle.gas_limit == -(-(measured + FIRST_TOUCH_PER_HOP * HOPS) * 6 // 5)  # +20 %
        # the net is checked on the final bytes' gas (the ones submit signs)
        budget = receipt["gasUsed"] + FIRST_TOUCH_PER_HOP * HOPS
        assert bundle.net_profit_wei == profit - budget * FEE_CAP
        floor = bundle.gas_limit * FEE_CAP + MIN_PROFIT
        assert bundle.min_profit == max(profit * 9 // 10, floor)
        assert bundle.min_profit >= floor
    finally:
        proc.stop()


async def test_a_block_opportunity_is_simulated_while_its_block_is_the_head_whatever_its_age(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    """performance.block_decision_timeout_ms: a block opportunity older than
    decision_timeout_ms but still at the head is simulated; one of the block before, or older
    than its own budget, is dropped stale; a backrun of the same age still times out."""
    unbalance(devnet)
    head = int(devnet.w3.eth.block_number)
    config = config_for(
        devnet, nats_server.url, tmp_path,
        performance={"decision_timeout_ms": 250, "block_decision_timeout_ms": 20_000},
        simulate={"reference_sample_rate": 0},
    )  # fmt: skip
    proc = ServiceProcess("simulate", config, tmp_path / "simulate.log").start()
    try:
        proc.wait_health(200, timeout_s=60)
        before = samples(proc)
        now = time.time_ns()
        aged = now - 2 * 10**9  # 2 s: eight times decision_timeout_ms
        victim = PendingTx(
            chain_id=CHAIN, hash="0x" + "ee" * 32, sender=devnet.executor.address, nonce=0,
            gas=300_000,
        )  # fmt: skip
        cases = [
            (opportunity(devnet, "blk-too-old", head, 5 * WETH), now - 21 * 10**9),
            (opportunity(devnet, "blk-block-before", head - 1, 5 * WETH), aged),
            (opportunity(devnet, "backrun-aged", head, 5 * WETH).model_copy(
                update={"strategy": "backrun", "victim": victim}), aged),
            (opportunity(devnet, "blk-aged-at-head", head, 5 * WETH), aged),  # last: no superseding
        ]  # fmt: skip
        for opp, seen_ns in cases:
            subject = subjects.opportunities(CHAIN, opp.strategy)
            await bus.publish(subject, opp, msg_id=opp.id, trace=opp.id, seen_ns=seen_ns)

        deadline = time.monotonic() + 60
        while True:
            found = samples(proc)
            done = value(found, "mev_bot_transactions_processed_total", stage="simulate")
            if done - value(before, "mev_bot_transactions_processed_total", stage="simulate") >= 4:
                break
            assert time.monotonic() < deadline, proc.logs()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        found = samples(proc)
        results = {
            dict(labels)["result"] + "/" + dict(labels)["strategy"]: v - before.get((n, labels), 0)
            for (n, labels), v in found.items()
            if n == "mev_bot_simulations_total" and v != before.get((n, labels), 0)
        }
        assert results == {
            f"published/{STRATEGY}": 1,  # 2 s old, still at its block
            f"stale_not_head/{STRATEGY}": 1,  # the block before
            f"stale_timeout/{STRATEGY}": 1,  # older than block_decision_timeout_ms
            "stale_timeout/backrun": 1,  # a backrun keeps decision_timeout_ms
        }
        bundles = [
            decode_message(Bundle, m.data) for m in await published(bus, subjects.bundles(CHAIN))
        ]
        assert [b.opportunity_id for b in bundles if b.block_number == head] == ["blk-aged-at-head"]
    finally:
        proc.stop()
