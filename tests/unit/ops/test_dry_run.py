"""The dry run's environment and its summary from a real ledger file."""

from __future__ import annotations

from pathlib import Path

import nats
from mev_common.executor import ExecHop, encode_execute
from mev_common.messages import Bundle, Outcome
from mev_common.settings import format_wei, load_settings
from mev_ops.dry_run import dry_run_env, dry_run_ledger, summarize

from services.submit.ledger import Ledger
from tests.conftest import NatsEndpoint
from tests.support.stack import write_config


def test_env_uses_a_separate_ledger_and_distinct_ports_for_containers(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, "nats://127.0.0.1:4222", 999, services={"separate_hosts": True})
    )
    env = dry_run_env(settings)
    assert env["MEV_SUBMIT__DRY_RUN"] == "true"
    assert env["MEV_DATABASE__PATH"] == str(tmp_path / "mev-bot.dry-run.db")
    assert env["MEV_SERVICES__SEPARATE_HOSTS"] == "false"
    ports = [v for k, v in env.items() if k.endswith("_PORT")]
    assert len(ports) == 8 and len(set(ports)) == 8


POOL_A = "0x" + "a1" * 20
POOL_B = "0x" + "b2" * 20
WETH = "0x" + "c3" * 20
TOKEN = "0x" + "d4" * 20
EXECUTOR = "0x" + "e5" * 20


def execute_data(amount_in: int, min_profit: int, pools: tuple[str, str] = (POOL_A, POOL_B)) -> str:
    hops = [ExecHop(pools[0], WETH, TOKEN, 30), ExecHop(pools[1], TOKEN, WETH, 30)]
    return "0x" + encode_execute(hops, amount_in, min_profit, False).hex()


def book(
    ledger: Ledger, i: int, strategy: str, status: str, data: str, profit: int, net: int
) -> None:
    bundle = Bundle.model_validate(
        {"id": f"b{i}", "opportunity_id": f"o{i}", "chain_id": 999, "strategy": strategy,
         "block_number": 100 + i, "to": EXECUTOR, "data": data, "simulated_profit": profit,
         "net_profit_wei": net}
    )  # fmt: skip
    outcome = Outcome(
        bundle_id=f"b{i}", chain_id=999, strategy=strategy, status=status,
        reason="dry run: would send ..." if status == "dry_run" else "too late",
    )  # fmt: skip
    ledger.book(bundle, outcome)


def test_each_opportunity_counts_once_at_simulates_net(tmp_path: Path) -> None:
    """Issue 15's double count: a backrun at block N and a cycle at N+1 make the same trade
    (nothing was sent, so it is still open): one opportunity, netted as simulate proved it."""
    settings = load_settings(write_config(tmp_path, "nats://127.0.0.1:4222", 999))
    ledger_path = dry_run_ledger(settings)
    ledger = Ledger(ledger_path)
    same = 10**18
    book(ledger, 0, "backrun", "dry_run", execute_data(same, 5 * 10**15), 6 * 10**15, 5 * 10**15)
    book(
        ledger, 1, "cyclic_arbitrage", "dry_run", execute_data(same, 4 * 10**15), 6 * 10**15,
        4 * 10**15,
    )  # fmt: skip  # same pools and amount in; only the min-profit floor moved with the fee
    book(ledger, 2, "cyclic_arbitrage", "dry_run", execute_data(2 * same, 1), 3 * 10**15, 10**15)
    book(
        ledger, 3, "cross_dex_arbitrage", "dry_run", execute_data(same, 1, (POOL_B, POOL_A)),
        2 * 10**15, 7 * 10**14,
    )  # fmt: skip
    book(ledger, 4, "backrun", "not_sent", execute_data(3 * same, 1), 10**15, 9 * 10**14)
    ledger.close()
    distinct_net = 5 * 10**15 + 10**15 + 7 * 10**14  # b0 (b1 repeats it), b2, b3
    assert summarize(ledger_path).splitlines() == [
        "dry run: 5 bundles booked",
        "would-be sends: 3 distinct opportunities (1 repeats of one already counted)",
        "  b0  backrun  block 100  profit 0.006 ether  net 0.005 ether",
        "  b2  cyclic_arbitrage  block 102  profit 0.003 ether  net 0.001 ether",
        "  b3  cross_dex_arbitrage  block 103  profit 0.002 ether  net 0.0007 ether",
        "by strategy and status (distinct; simulated profit, net of gas):",
        "  backrun              dry_run       1           0.006 ether  net 0.005 ether",
        "  backrun              not_sent      1           0.001 ether  net 0.0009 ether",
        "  cross_dex_arbitrage  dry_run       1           0.002 ether  net 0.0007 ether",
        "  cyclic_arbitrage     dry_run       1           0.003 ether  net 0.001 ether",
        f"P&L of the would-be sends, net of gas: {format_wei(distinct_net)}",
    ]
    assert format_wei(distinct_net) == "0.0067 ether"


def test_summary_without_a_ledger(tmp_path: Path) -> None:
    assert summarize(tmp_path / "none.db") == "dry run: no ledger written (submit booked nothing)"


def test_live_stack_names_a_fresh_heartbeat_on_a_shared_nats(
    tmp_path: Path, nats_server: NatsEndpoint
) -> None:
    """NATS not embedded: a running detect's heartbeat in the control KV blocks the dry run
    (this crashed with AttributeError on `Instance.instance` before mypy found it)."""
    import asyncio
    import time

    import orjson
    from mev_common import lifecycle_keys as keys
    from mev_common.control import ensure_control_bucket
    from mev_ops.dry_run import live_stack

    settings = load_settings(write_config(tmp_path, nats_server.url, 31337))
    assert live_stack(settings) == []

    async def beat() -> None:
        nc = await nats.connect(nats_server.url)
        kv = await ensure_control_bucket(nc.jetstream())
        body = {"service": "detect", "instance": "host-1.a", "ts": time.time()}
        await kv.put(keys.instance_key(31337, "detect", "host-1.a"), orjson.dumps(body))
        await nc.close()

    asyncio.run(beat())
    assert live_stack(settings) == [f"detect instance host-1.a (heartbeat on {nats_server.url})"]
