"""The whole bot on the devnet: real anvil, real NATS, the four services as processes.

A seeded user flow of 30 blocks runs while the bot trades. The bot must land profitable
arbitrage, never revert, book in its ledger exactly what the chain shows (the executor's WETH
gain and the bot's ETH spent on gas, to the wei), and account for every opportunity.
The flow is mixed (V2 swaps through Router02, V3 swaps through SwapRouter) and detect searches
cycles through both designs: the second test checks, on the same run, that trades through V3
pools landed (a V3 pool's `Swap` log in an included trade's receipt).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mev_common.amm.v3_book import V3_SWAP_TOPIC
from mev_common.ledger_view import PnlSummary
from mev_common.settings import load_settings
from mev_ops.devnet.anvil import AnvilNode
from mev_ops.devnet.flow import run_flow
from mev_ops.nats_auth_cmds import declare
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats
from mev_ops.pipeline_status import parse_metrics, total

from services.submit.pnl import pnl_summary
from tests.support.chain import eth_balance, rpc, weth_balance
from tests.support.devnet_state import deployed_anvil
from tests.support.stack import SERVICES, ServiceProcess, node_config

CHAIN = 31337
# 2026-12-01, 40 blocks, 2 runs: 19 and 18 trades included, 17 and 16 of them through V3
# pools; the first lands a block or two into the flow. 30 keeps every assertion's margin wide
# (>= 1 included, >= 1 through V3) at half the 60 it was: ~30 s of `make test`.
BLOCKS = 30
EXECUTOR_ARTIFACT = Path(__file__).resolve().parents[2] / "contracts" / "build" / "Executor.json"
# What the first test saw land, for the second (same run: one devnet flow for both).
LANDED: dict[str, Any] = {}


def scrape(proc: ServiceProcess) -> dict[str, Any]:
    port = yaml.safe_load(proc.config.read_text())["services"][proc.name]["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return parse_metrics(resp.read().decode())


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AnvilNode, EmbeddedNats, Path]]:
    tmp = tmp_path_factory.mktemp("e2e")
    # the session's saved deployment when a test module made one (one deploy less)
    node, _ = deployed_anvil(tmp, CHAIN, 1, tmp / "bot.key", tmp / "deployment.json", block_time=1)
    # with bus permissions on, as `make run`: every service connects as its own user
    nats = start_embedded_nats(store_dir=tmp / "nats", auth_dir=tmp / "nats-auth")
    try:
        yield node, nats, tmp
    finally:
        nats.cleanup()
        node.stop()


@pytest.mark.timeout(300)
async def test_bot_lands_profit_that_ledger_and_chain_agree_on(
    world: tuple[AnvilNode, EmbeddedNats, Path],
) -> None:
    node, nats, tmp = world
    deployment = json.loads((tmp / "deployment.json").read_text())
    weth, executor = deployment["weth"], deployment["executor"]["address"]
    bot = deployment["executor"]["owner"]
    config = node_config(
        tmp,
        nats.url,
        CHAIN,
        node.rpc_url,
        tmp / "deployment.json",
        keys={"path": str(tmp / "bot.key")},
        submit={"priority_fee": "3.5 gwei"},
        nats={"credentials_dir": str(tmp / "nats-auth")},
    )
    assert await declare(load_settings(config)) == 0  # the operator declares streams, buckets
    procs = {n: ServiceProcess(n, config, tmp / f"{n}.log").start() for n in SERVICES}
    try:
        for proc in procs.values():
            proc.wait_health(200, timeout_s=40)
        await asyncio.sleep(2.0)  # detect and simulate load their state from the chain
        weth_before, eth_before = (
            weth_balance(node.rpc_url, weth, executor),
            eth_balance(node.rpc_url, bot),
        )
        report = await asyncio.to_thread(
            run_flow, node.rpc_url, deployment, 1, 4.0, BLOCKS, emit=None
        )
        assert len(report.blocks) >= BLOCKS
        # let the last trades settle: every opportunity simulated, every bundle in the ledger
        # and booked, nothing in flight (the ledger alone settled while simulate still had the
        # last block's opportunities: one failed run in 14)
        ledger = tmp / "mev-bot.db"
        deadline = time.monotonic() + 30
        while True:
            pnl = pnl_summary(ledger)
            samples = {name: scrape(proc) for name, proc in procs.items()}
            if settled(samples, pnl) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        for proc in procs.values():  # upstream first: the ledger is read after the stop
            proc.stop()
    assert all(p.proc is not None and p.proc.returncode == 0 for p in procs.values()), {
        n: p.logs() for n, p in procs.items() if p.proc and p.proc.returncode
    }

    pnl = pnl_summary(ledger)
    with sqlite3.connect(ledger) as db:
        rows = db.execute(
            "SELECT o.tx_hash, b.strategy FROM outcomes o JOIN bundles b ON b.id = o.bundle_id"
            " WHERE o.status = 'included'"
        ).fetchall()
    included = [h for h, _ in rows]
    LANDED["receipts"] = [rpc(node.rpc_url, "eth_getTransactionReceipt", [h]) for h in included]
    LANDED["backrun_receipts"] = [
        r
        for r, (_, strategy) in zip(LANDED["receipts"], rows, strict=True)
        if strategy == "backrun"
    ]
    LANDED["v3_pools"] = {p["address"].lower() for p in deployment["v3_pools"]}
    LANDED["reverted"] = pnl.count("reverted")
    weth_gain = weth_balance(node.rpc_url, weth, executor) - weth_before
    gas_paid = eth_before - eth_balance(node.rpc_url, bot)
    # the bot lands profitable arbitrage and never reverts
    assert pnl.count("included") >= 1
    assert pnl.count("reverted") == 0
    # the ledger's realized profit and gas are exactly what the chain shows
    assert pnl.realized_profit.get(weth.lower(), 0) == weth_gain > 0
    assert pnl.gas_spent_wei == gas_paid
    assert pnl.net_profit_wei(weth) == weth_gain - gas_paid > 0
    # every opportunity is accounted for: simulated (published or dropped with a reason), and
    # every bundle booked with an outcome
    opportunities, simulated, bundles = counts(samples)
    assert opportunities > 0
    assert simulated == opportunities
    assert bundles == pnl.bundles == sum(pnl.outcomes.values())
    assert pnl.in_flight == 0


def counts(samples: dict[str, Any]) -> tuple[float, float, float]:
    """Opportunities detect published, simulations simulate ran, bundles it published."""
    published = "mev_bot_messages_published_total"
    return (
        total(samples["detect"], published, subject="opportunities"),
        total(samples["simulate"], "mev_bot_simulations_total"),
        total(samples["simulate"], published, subject="bundles"),
    )


def settled(samples: dict[str, Any], pnl: PnlSummary) -> bool:
    """Every opportunity simulated, every bundle in the ledger with an outcome, none in flight."""
    opportunities, simulated, bundles = counts(samples)
    booked = sum(pnl.outcomes.values())
    return simulated == opportunities and bundles == pnl.bundles == booked and not pnl.in_flight


def v3_trades(receipts: list[dict[str, Any]], v3_pools: set[str]) -> int:
    """Included trades whose receipt holds a `Swap` of one of the devnet's V3 pools."""
    return sum(
        any(
            log["address"].lower() in v3_pools and log["topics"][:1] == [V3_SWAP_TOPIC]
            for log in receipt["logs"]
        )
        for receipt in receipts
    )


def test_trades_through_v3_pools_land() -> None:
    """On the run above (ledger equal to the chain to the wei, zero reverts, asserted there):
    some of the bot's included trades went through V3 pools."""
    if "uniswapV3SwapCallback" not in EXECUTOR_ARTIFACT.read_text():
        pytest.skip(
            "the executor has no uniswapV3SwapCallback (issue 13's executor part, branch "
            "h17-v3exec, is not merged): simulate drops every V3 route, none can land"
        )
    if "receipts" not in LANDED:
        pytest.skip("the devnet run above did not get as far as booking its trades")
    assert LANDED["reverted"] == 0
    assert v3_trades(LANDED["receipts"], LANDED["v3_pools"]) >= 1
    # backruns of pending SwapRouter swaps land ~1 a minute on the flow: too few to assert on a
    # 30-block run; tests/integration/test_backrun_v3.py proves that path to the wei
    backruns = v3_trades(LANDED["backrun_receipts"], LANDED["v3_pools"])
    print(f"backruns landed: {len(LANDED['backrun_receipts'])}, through V3 pools: {backruns}")
