"""RPC loss on a real submit: the primary dies mid-flow, then every endpoint, then they return.

Two loopback TCP proxies in front of one anvil are the endpoints; killing a proxy is a node
whose process died (refused connects, cut connections). Asserted: with the primary dead the
next trade is sent within 1 s through the other endpoint and lands; with both dead /health is
503 naming both and nothing is sent; once they are back, health recovers and trades land again,
without a restart. Counts are exact: trades sent == trades landed, one nonce each.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from mev_common.bus import Bus

from tests.conftest import NatsEndpoint
from tests.integration import test_submit
from tests.integration.devnet.conftest import Devnet
from tests.support.stack import write_config
from tests.support.submit_world import (
    CHAIN,
    arbitrage_bundle,
    bot_nonce,
    health,
    ledger_rows,
    mine,
    outcome_of,
    publish_bundle,
    start_submit,
    tx_states,
    wait_active,
    wait_for,
)
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(150)
devnet = test_submit.devnet  # the same module-scoped anvil fixture, deployed from nothing

FAILOVER_BOUND_S = 1.0


def rpc_check(proc: Any) -> dict[str, Any]:
    return dict(health(proc).get("checks", {}).get("rpc") or {})


async def test_primary_dies_failover_within_1s_all_down_503_no_sends_back_recovers(
    devnet: Devnet, nats_server: NatsEndpoint, bus: Bus, tmp_path: Path
) -> None:
    anvil_port = int(devnet.node.rpc_url.rsplit(":", 1)[1])
    # the secondary answers 100 ms slower: the pool ranks the primary first, as in production
    primary = TcpProxy(anvil_port).start()
    secondary = TcpProxy(anvil_port, delay_s=0.1).start()
    config = write_config(
        tmp_path,
        nats_server.url,
        CHAIN,
        chain={
            "rpc_endpoints": [
                {"name": "primary", "url": primary.url, "timeout_s": 2},
                {"name": "secondary", "url": secondary.url, "timeout_s": 2},
            ],
            "block_time_s": 1,
        },
        contracts={"deployment_file": str(devnet.deployment_path)},
        keys={"path": str(devnet.key_path)},
    )
    db = tmp_path / "mev-bot.db"
    proc = start_submit(config, tmp_path)
    try:
        await wait_active(proc)
        first_nonce = bot_nonce(devnet)

        async def land(bundle_id: str) -> float:
            """Publish a bundle; seconds from publish to its trade being sent; mine it."""
            bundle, profit = arbitrage_bundle(devnet, bundle_id)
            published = time.monotonic()
            await publish_bundle(bus, bundle)
            await wait_for(lambda: tx_states(db, bundle.id) == [("trade", "sent")], what="sent")
            took = time.monotonic() - published
            mine(devnet)
            [outcome] = await outcome_of(bus, bundle.id)
            assert (outcome.status, outcome.realized_profit) == ("included", profit), outcome
            return took

        baseline = await land("rpc-before")
        assert rpc_check(proc)["ok"] is True
        ranked = rpc_check(proc)["detail"]
        assert ranked["primary"]["latency_ms"] < ranked["secondary"]["latency_ms"], ranked
        assert ranked["secondary"]["latency_ms"] >= 100  # it was used, and is slower

        # -- the primary dies mid-flow: the next trade goes out through the secondary ------
        primary.kill()
        took = await land("rpc-primary-dead")
        print(
            f"primary RPC killed: next trade sent {took * 1000:.0f} ms after its bundle "
            f"(both up: {baseline * 1000:.0f} ms)"
        )
        assert took < FAILOVER_BOUND_S
        assert health(proc)["status"] == "ok", health(proc)
        await wait_for(
            lambda: rpc_check(proc).get("detail", {}).get("primary", {}).get("errors", 0) > 0,
            what="primary seen failing",
        )
        assert rpc_check(proc)["ok"] is True  # one endpoint left: still healthy

        # -- every endpoint dies: 503 naming both, and nothing is sent ---------------------
        secondary.kill()
        down_at = time.monotonic()
        await wait_for(lambda: proc.health_status() == 503, timeout_s=10, what="503")
        print(f"all RPCs down: /health 503 after {time.monotonic() - down_at:.2f} s")
        check = rpc_check(proc)
        assert check["ok"] is False and check["critical"] is True
        assert check["detail"].startswith("every RPC endpoint is down (primary: ")
        assert "; secondary: " in check["detail"]
        nonce = bot_nonce(devnet)
        held, _ = arbitrage_bundle(devnet, "rpc-all-down")
        await publish_bundle(bus, held)
        await asyncio.sleep(2.0)  # bundles keep coming; none may be sent
        assert tx_states(db, held.id) == []
        assert bot_nonce(devnet) == nonce
        mine(devnet, 3)  # (straight to anvil) the held bundle's deadline passes meanwhile

        # -- the endpoints come back: recovery without a restart ---------------------------
        primary.start()
        secondary.start()
        back_at = time.monotonic()
        await wait_for(lambda: proc.health_status() == 200, timeout_s=10, what="200 again")
        print(f"RPCs back: /health 200 after {time.monotonic() - back_at:.2f} s")
        await land("rpc-after")
        assert tx_states(db, held.id) == []  # redelivered after recovery: too late, not sent
        assert proc.proc is not None and proc.proc.poll() is None  # the same process

        # exact accounting: 3 trades sent, 3 landed, consecutive nonces, nothing else sent
        landed = ledger_rows(
            db,
            "SELECT t.nonce FROM txs t JOIN outcomes o ON o.bundle_id = t.bundle_id "
            "WHERE o.status = 'included' ORDER BY t.nonce",
        )
        assert [n for (n,) in landed] == [first_nonce, first_nonce + 1, first_nonce + 2]
        assert ledger_rows(db, "SELECT COUNT(*) FROM txs") == [(3,)]
        assert bot_nonce(devnet, "latest") == first_nonce + 3
    finally:
        proc.stop()
        primary.kill()
        secondary.kill()
