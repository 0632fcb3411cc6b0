"""`make run`, Ctrl-C with a trade in flight, `make run` again: the second run trades.

The second run starts a new devnet (same chain id, new genesis) on the first run's data: the
ledger still holds the old chain's in-flight trade and data/nats its bundles. Before chains
were recorded, submit refused every bundle of the second run (the old trade's pools stayed
claimed) and re-sent cancels for a nonce the new chain never reaches. Now the old trade is
closed as chain_reset and the second run lands a trade on the new chain as fast as a first
run does (SECOND_RUN_BOUND_S from `mev-bot run`). Both runs print where the seconds went.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mev_common.settings import load_settings
from mev_ops.nats_server import free_port

from tests.support.run_timeline import RunWatch
from tests.support.stack import write_config

CHAIN = 31337
GWEI = 10**9
# From the second `mev-bot run` to a trade landed on the new chain: the 30 s. Measured
# 12.5-20 s on this shared 2-core machine at load average 11-16 (the timeline is printed): the
# devnet deploy is the longest path (~8 s until its process has imported web3 and started anvil,
# ~6 s deploying), the services are healthy meanwhile, then ~3 s until the seeded flow's first
# swaps are mined and ~1 s until our trade lands in the next block. It was 30-41 s before
# bytecode was precompiled, the deploy went in bulk and detect stopped reloading at start.
SECOND_RUN_BOUND_S = 30.0


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


def rpc(url: str, method: str, params: list[Any]) -> Any:
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def ctrl_c(run: RunWatch) -> None:
    run.stop_polling()
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=60) == 0, run.log_path.read_text()[-6000:]


LANDED = (
    "SELECT o.bundle_id, o.block_number, r.genesis_hash FROM outcomes o "
    "JOIN receipts r ON r.tx_hash = o.tx_hash WHERE o.status = 'included'"
)
CANCELS = (
    "SELECT c.hash FROM txs c JOIN txs t ON t.bundle_id = c.bundle_id "
    "WHERE t.hash = ? AND c.kind = 'cancel' ORDER BY c.hash"
)


@pytest.mark.timeout(300)
def test_run_ctrl_c_with_a_trade_in_flight_then_run_again_lands_trades(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(
        tmp_path,
        f"nats://127.0.0.1:{free_port()}",
        CHAIN,
        chain={
            "rpc_endpoints": [{"name": "anvil", "url": url, "ws_url": f"ws://127.0.0.1:{port}"}],
            "block_time_s": 1,
        },
        nats={"embedded": True, "store_dir": str(tmp_path / "nats")},
        submit={"priority_fee": "3.5 gwei"},
        database={"on_chain_change": "reset"},
        devnet={"seed": 1, "port": port, "block_time_s": 1, "flow_rate": 4},
    )
    settings = load_settings(config)
    db = tmp_path / "mev-bot.db"

    # -- first run: trade, then Ctrl-C while one trade is in flight ---------------------------
    first = RunWatch(config, settings, tmp_path / "run1.log")
    try:
        first.wait_until(120, lambda: rows(db, LANDED))
        first.mark("first trade landed (ledger)")
        print("\n" + first.report("first run, empty data"))
        [(old_genesis,)] = rows(db, "SELECT genesis_hash FROM chain_binding")

        def held_in_flight() -> list[tuple[Any, ...]]:
            sent = rows(db, "SELECT hash FROM txs WHERE kind = 'trade' AND state = 'sent'")
            if not sent:
                return []
            # a fee spike keeps it out of the next blocks: still unresolved when we stop
            rpc(url, "anvil_setNextBlockBaseFeePerGas", [hex(1000 * GWEI)])
            time.sleep(0.3)
            still = rows(db, "SELECT hash FROM txs WHERE kind = 'trade' AND state = 'sent'")
            return [r for r in still if r in sent]

        in_flight = first.wait_until(60, held_in_flight)
    finally:
        ctrl_c(first)
    [(in_flight_hash,)] = in_flight[:1]
    assert rows(db, "SELECT state FROM txs WHERE hash = ?", in_flight_hash) == [("sent",)]
    landed_first = {r[0] for r in rows(db, LANDED)}
    cancels_before = rows(db, CANCELS, in_flight_hash)

    # -- second run on the same data: a new chain --------------------------------------------
    second = RunWatch(config, settings, tmp_path / "run2.log")
    try:

        def landed_on_new_chain() -> list[tuple[Any, ...]]:
            binding = rows(db, "SELECT genesis_hash FROM chain_binding")
            if not binding or binding[0][0] == old_genesis:
                return []
            return [r for r in rows(db, LANDED) if r[2] == binding[0][0]]

        # the bound is what the operator sees: from `mev-bot run` (NATS, the devnet deploy and
        # the services' start-up, which overlap, included) to a trade landed on the new chain
        landed = second.wait_until(SECOND_RUN_BOUND_S + 60, landed_on_new_chain)
        total = time.monotonic() - second.started
        second.mark("first trade landed (ledger)")
        print(second.report("second run, the first run's data"))
        print(f"second run: first trade on the new chain {total:.1f} s after `mev-bot run`")
        assert total < SECOND_RUN_BOUND_S, second.log_path.read_text()[-6000:]
        [(new_genesis,)] = rows(db, "SELECT genesis_hash FROM chain_binding")
        assert new_genesis != old_genesis
        assert all(r[0] not in landed_first for r in landed)
        new_block = int(rpc(url, "eth_blockNumber", []).json()["result"], 16)
        assert all(0 < r[1] <= new_block for r in landed)
        # the old chain's in-flight trade: closed as chain_reset, published, never re-sent
        [(status, reason, published)] = rows(
            db,
            "SELECT o.status, o.reason, o.published FROM outcomes o JOIN txs t "
            "ON t.bundle_id = o.bundle_id WHERE t.hash = ?",
            in_flight_hash,
        )
        assert (status, published) == ("chain_reset", 1)
        assert old_genesis in reason and new_genesis in reason
        assert rows(db, "SELECT state FROM txs WHERE hash = ?", in_flight_hash) == [
            ("chain_reset",)
        ]
        text = second.log_path.read_text()
        [(old_bundle,)] = rows(db, "SELECT bundle_id FROM txs WHERE hash = ?", in_flight_hash)
        assert f"is in our unsettled trade {old_bundle}" not in text  # the bug this fixes
        print(f"second run: {text.count('reason=stale: ')} leftover bundles refused as stale")
        assert rows(db, CANCELS, in_flight_hash) == cancels_before  # none re-sent
    finally:
        ctrl_c(second)
