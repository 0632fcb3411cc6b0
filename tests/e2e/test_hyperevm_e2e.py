"""The whole bot on the hyperevm profile: chain 999, 2M-gas blocks, shanghai, the RPC stand-in.

Issue 14's done-when: the four services run through at least 60 blocks of the flow behind the
stand-in; trades land with the ledger equal to the chain to the wei and zero reverts (but for
the polled head's race, bounded below); the stand-in's count shows the bot within 100 calls per
minute after its first minute; no call the stand-in refuses was attempted. The stand-in here
runs with a budget far above 100 so that what the bot *would* spend is measured rather than cut
off by HTTP 429s.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mev_common.settings import load_settings
from mev_ops.devnet.anvil import AnvilNode, free_port, start_anvil
from mev_ops.devnet.deploy import deploy_devnet
from mev_ops.devnet.flow import run_flow
from mev_ops.devnet.hyperevm_proxy import HyperEvmProxy, make_server
from mev_ops.nats_auth_cmds import declare
from mev_ops.nats_server import EmbeddedNats, start_embedded_nats

from services.submit.pnl import PnlSummary, pnl_summary
from tests.support.chain import eth_balance, weth_balance
from tests.support.stack import SERVICES, ServiceProcess, metric_value, write_config

CHAIN = 999
# at least 60 blocks of the flow, and long enough that a whole minute after the bot's first
# minute is measured (start-up takes ~10 s before the flow)
BLOCKS = 115
BUDGET_PER_MINUTE = 100
MEASURE_BUDGET = 100_000  # measure, do not throttle
SHARES = {"ingest": 0.5, "detect": 0.1, "simulate": 0.15, "submit": 0.25}  # as the profile's


def reverted_blocks(ledger: Path) -> list[tuple[int, int]]:
    """(block the trade was proven on, block it was mined in) of every reverted trade."""
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT b.block_number, o.block_number FROM bundles b "
            "JOIN outcomes o ON o.bundle_id = b.id WHERE o.status = 'reverted'"
        ).fetchall()
    finally:
        db.close()
    return [(int(a), int(b)) for a, b in rows]


def last_minute(proxy: HyperEvmProxy) -> int:
    """The minute (since the bot's first call) of the stand-in's latest counted call."""
    return max((int(k) for k in proxy.stats.snapshot()["per_minute"]), default=0)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AnvilNode, HyperEvmProxy, str, EmbeddedNats, Path]]:
    tmp = tmp_path_factory.mktemp("e2e-hyperevm")
    node = start_anvil(free_port(), CHAIN, None, tmp, hardfork="shanghai", gas_limit=2_000_000)
    deploy_devnet(
        node.rpc_url, CHAIN, 1, tmp / "bot.key", tmp / "deployment.json", block_time=1,
        executor_build="ExecutorStorageCommit",
    )  # fmt: skip
    proxy = HyperEvmProxy(node.rpc_url, MEASURE_BUDGET)
    server = make_server(proxy, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    nats = start_embedded_nats(store_dir=tmp / "nats", auth_dir=tmp / "nats-auth")
    try:
        yield node, proxy, f"http://127.0.0.1:{server.server_address[1]}", nats, tmp
    finally:
        nats.cleanup()
        server.shutdown()
        server.server_close()
        proxy.close()
        node.stop()


async def settled(ledger: Path, within_s: float = 30.0) -> PnlSummary:
    """The ledger once nothing is in flight and every bundle has its outcome (or `within_s`):
    submit tracks at least every 6 s while a trade is unresolved."""
    deadline = time.monotonic() + within_s
    while True:
        pnl = pnl_summary(ledger)
        done = pnl.in_flight == 0 and sum(pnl.outcomes.values()) == pnl.bundles
        if done or time.monotonic() >= deadline:
            return pnl
        await asyncio.sleep(0.5)


@pytest.mark.timeout(480)
async def test_bot_inside_hyperevm_limits(
    world: tuple[AnvilNode, HyperEvmProxy, str, EmbeddedNats, Path],
) -> None:
    node, proxy, proxy_url, nats, tmp = world
    deployment = json.loads((tmp / "deployment.json").read_text())
    weth, executor = deployment["weth"], deployment["executor"]["address"]
    bot = deployment["executor"]["owner"]
    config = write_config(
        tmp,
        nats.url,
        CHAIN,
        chain={
            "rpc_endpoints": [{"name": "stand-in", "url": proxy_url, "rate_limit_rps": 1000}],
            "block_time_s": 1,
            "pending_feed": False,
            "block_gas_limit": 2_000_000,
            "rpc_budget_per_minute": BUDGET_PER_MINUTE,
            "rpc_budget_shares": SHARES,
            "latest_state_only": True,
        },
        simulate={"reference_sample_rate": 0},
        database={"path": str(tmp / "mev-bot.db"), "reorg_depth": 0},
        contracts={"deployment_file": str(tmp / "deployment.json")},
        keys={"path": str(tmp / "bot.key")},
        submit={"priority_fee": "3.5 gwei", "max_in_flight": 8},
        nats={"credentials_dir": str(tmp / "nats-auth")},
    )
    assert await declare(load_settings(config)) == 0
    procs = {n: ServiceProcess(n, config, tmp / f"{n}.log").start() for n in SERVICES}
    try:
        for proc in procs.values():
            proc.wait_health(200, timeout_s=40)
        await asyncio.sleep(2.0)
        weth_before = weth_balance(node.rpc_url, weth, executor)
        eth_before = eth_balance(node.rpc_url, bot)
        # the flow's users talk to anvil: they are not the bot's budget
        report = await asyncio.to_thread(
            run_flow, node.rpc_url, deployment, 1, 4.0, BLOCKS, emit=None
        )
        assert len(report.blocks) >= BLOCKS
        ledger = tmp / "mev-bot.db"
        pnl = await settled(ledger)
        # every trade settled within 30 s of the flow's end (submit tracks at least every 6 s
        # while a trade is unresolved), by services that are all still running
        dead = {n: p.proc.poll() for n, p in procs.items() if p.proc and p.proc.poll() is not None}
        assert not dead, (dead, {n: procs[n].logs() for n in dead})
        skips = metric_value(procs["submit"], "mev_bot_rpc_budget_skips_total")
        assert pnl.in_flight == 0, (pnl, f"submit's budget skips: {skips}", procs["submit"].logs())
        # the budget is judged on whole minutes after the first: keep the bot running (its
        # steady state) until the stand-in has counted a call in minute 2, if the flow ended
        # sooner (it does on a quiet machine, where start-up is quick)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and last_minute(proxy) < 2:  # noqa: ASYNC110
            await asyncio.sleep(1.0)  # (a poll of another thread's counter, not an event)
        # a trade the bot sent meanwhile (on what the flow's last swaps left) settles before the
        # services stop: stopped with it in flight, its gain is on chain but not in the books.
        # Detect stops first, so no trade starts after the books are read: settled until the
        # bundle count holds still for 3 s (what simulate and submit held has drained)
        await asyncio.to_thread(procs["detect"].stop)
        after = await settled(ledger)
        for _ in range(10):
            await asyncio.sleep(3.0)
            again = await settled(ledger)
            if again.bundles == after.bundles:
                break
            after = again
        assert after.in_flight == 0, (after, procs["submit"].logs())
        stats: dict[str, Any] = proxy.stats.snapshot()
    finally:
        for proc in procs.values():
            proc.stop()
    (tmp / "proxy-stats.json").write_text(json.dumps(stats, indent=2))
    # no call the stand-in refuses was attempted
    assert stats["refused"] == {}, stats["refused"]
    # within the budget after the first minute: every 60 s window that starts a minute or more
    # after the bot's first call (the stand-in's sliding count), and every full minute
    minutes = {int(k): v for k, v in stats["per_minute"].items()}
    full = [v for k, v in minutes.items() if 1 <= k < max(minutes)]
    assert full and max(full) <= BUDGET_PER_MINUTE, (minutes, stats["calls"])
    sliding = stats["max_sliding_minute_after_first"]
    assert sliding is not None and sliding <= BUDGET_PER_MINUTE, (sliding, stats["calls"])

    pnl = pnl_summary(ledger)
    weth_gain = weth_balance(node.rpc_url, weth, executor) - weth_before
    gas_paid = eth_before - eth_balance(node.rpc_url, bot)
    assert pnl.count("included") >= 1
    # The profile's head is polled within the RPC budget (one poll every ~2.7 s here): a trade
    # proven on a head seen late and sent ~25 ms later may meet a block mined meanwhile and land
    # two blocks after its state, where the executor's minProfit reverts it (gas only). Ingest
    # now polls just after each block's estimated production and submit refuses a trade whose
    # state the next block has likely replaced ("late head"; mev_common/chain/block_phase.py).
    # Measured: before, 3 of 44 trades landed two blocks late in 3 runs, all 60-100 s in (3
    # earlier runs under heavier load: 6 of 42, 2 reverted); after, 1 of 74 in 5 runs, reverted:
    # the first trade, sent before the estimate had locked (the guard acts only while it is
    # locked: not in the first ~10 s of polls, nor for a few polls when old bounds expire). So
    # the bound stays; a
    # trade reverted in the block right after its state would mean a wrong simulation.
    late = reverted_blocks(ledger)
    assert len(late) == pnl.count("reverted") <= 3, late
    assert all(mined >= proven + 2 for proven, mined in late), late
    assert pnl.realized_profit.get(weth.lower(), 0) == weth_gain > 0
    assert pnl.gas_spent_wei == gas_paid
