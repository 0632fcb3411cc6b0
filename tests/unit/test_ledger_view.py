"""The ledger's one read API over a real SQLite ledger written through submit's own `Ledger`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from mev_common.executor import ExecHop, encode_execute
from mev_common.ledger_view import (
    LedgerUnreadable,
    distinct_would_be_sends,
    pnl_summary,
    read_trades,
)
from mev_common.messages import Bundle, Outcome

from services.submit.ledger import Ledger
from services.submit.ledger_records import Settled, TxRecord

WETH = "0x" + "C3" * 20  # mixed case on purpose: readers key tokens in lower case
TOKEN = "0x" + "d4" * 20
POOL_A, POOL_B = "0x" + "a1" * 20, "0x" + "b2" * 20
EXECUTOR = "0x" + "e5" * 20


def call(amount_in: int, min_profit: int) -> str:
    hops = [ExecHop(POOL_A, WETH.lower(), TOKEN, 30), ExecHop(POOL_B, TOKEN, WETH.lower(), 30)]
    return "0x" + encode_execute(hops, amount_in, min_profit, False).hex()


def bundle(i: int, strategy: str = "cyclic_arbitrage", data: str = "0x", **kw: object) -> Bundle:
    return Bundle.model_validate(
        {"id": f"b{i}", "opportunity_id": f"o{i}", "chain_id": 31337, "strategy": strategy,
         "block_number": 100 + i, "to": EXECUTOR, "data": data, "profit_token": WETH, **kw}
    )  # fmt: skip


def outcome(b: Bundle, status: str, **kw: object) -> Outcome:
    return Outcome.model_validate(
        {"bundle_id": b.id, "chain_id": 31337, "strategy": b.strategy, "status": status,
         "reason": "r", **kw}
    )  # fmt: skip


def tx(b: Bundle, nonce: int, kind: str = "trade") -> TxRecord:
    return TxRecord(
        hash="0x" + f"{nonce:02x}" * 32, bundle_id=b.id, kind=kind, nonce=nonce,
        max_fee_per_gas=7, max_priority_fee_per_gas=1, gas_limit=250_000,
        deadline_block=b.block_number + 2, raw="0x00", state="signed", created_at=time.time(),
    )  # fmt: skip


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    """Five bundles: included (mined, WETH), reverted (gas only), not sent, dry run twice for
    one trade plus once for another, and one still in flight (signed and sent, no outcome)."""
    path = tmp_path / "ledger.db"
    ledger = Ledger(path)
    mined = bundle(0, simulated_profit=9_000, net_profit_wei=6_000)
    ledger.record_signed(mined, tx(mined, 0), "", 0)
    ledger.mark_sent(tx(mined, 0).hash)
    ledger.resolve(Settled(
        mined,
        outcome(mined, "included", tx_hash=tx(mined, 0).hash, block_number=101, gas_used=100,
                effective_gas_price=30, realized_profit=8_500),
        {tx(mined, 0).hash: "mined"}, None, gas_cost=3_000,
    ))  # fmt: skip
    rev = bundle(1, strategy="backrun", simulated_profit=4_000, net_profit_wei=1_000)
    ledger.record_signed(rev, tx(rev, 1), "", 0)
    ledger.mark_sent(tx(rev, 1).hash)
    ledger.resolve(Settled(
        rev, outcome(rev, "reverted", tx_hash=tx(rev, 1).hash, block_number=102),
        {tx(rev, 1).hash: "mined"}, None, gas_cost=2_500,
    ))  # fmt: skip
    refused = bundle(2, simulated_profit=500, net_profit_wei=-100)
    ledger.book(refused, outcome(refused, "not_sent"))
    first = bundle(3, strategy="backrun", data=call(10**18, 5), simulated_profit=7_000,
                   net_profit_wei=5_000)  # fmt: skip
    again = bundle(4, data=call(10**18, 4), simulated_profit=7_000, net_profit_wei=4_000)
    other = bundle(5, data=call(2 * 10**18, 4), simulated_profit=3_000, net_profit_wei=2_000)
    for b in (first, again, other):
        ledger.book(b, outcome(b, "dry_run", realized_profit=b.simulated_profit))
    flying = bundle(6, simulated_profit=1_000, net_profit_wei=800)
    ledger.record_signed(flying, tx(flying, 6), "", 0)
    ledger.mark_sent(tx(flying, 6).hash)
    ledger.close()
    return path


def test_trades_read_every_bundle_with_its_outcome_columns(ledger_path: Path) -> None:
    trades = read_trades(ledger_path)
    assert [(t.bundle_id, t.status) for t in trades] == [
        ("b0", "included"), ("b1", "reverted"), ("b2", "not_sent"), ("b3", "dry_run"),
        ("b4", "dry_run"), ("b5", "dry_run"), ("b6", None),
    ]  # fmt: skip
    b0 = trades[0]
    assert (b0.state_block, b0.landed_block, b0.tx_hash) == (100, 101, "0x" + "00" * 32)
    assert (b0.simulated_profit, b0.net_profit_wei, b0.realized_profit, b0.gas_cost_wei) == (
        9_000, 6_000, 8_500, 3_000,
    )  # fmt: skip
    assert b0.profit_token == WETH.lower()
    # net: realized minus gas once mined; simulate's proven net otherwise
    assert [t.net for t in trades] == [5_500, -2_500, -100, 5_000, 4_000, 2_000, 800]
    assert [t.landed_net(WETH) for t in trades] == [5_500, -2_500, 0, 0, 0, 0, 0]
    assert trades[0].landed_net(TOKEN) == -3_000  # profit in another token is not netted
    assert (trades[6].landed_block, trades[6].reason, trades[6].gas_cost_wei) == (None, "", 0)


def test_would_be_sends_count_each_trade_once(ledger_path: Path) -> None:
    sends = distinct_would_be_sends(read_trades(ledger_path))
    # b4 repeats b3's trade (same pools and amount in; only the min-profit floor moved)
    assert [s.bundle_id for s in sends] == ["b3", "b5"]
    assert sum(s.net for s in sends) == 7_000


def test_pnl_summary_from_columns(ledger_path: Path) -> None:
    s = pnl_summary(ledger_path)
    assert s.outcomes == {"included": 1, "reverted": 1, "not_sent": 1, "dry_run": 3}
    assert (s.bundles, s.in_flight, s.txs_sent) == (7, 1, 3)
    assert s.realized_profit == {WETH.lower(): 8_500}
    assert s.would_be_profit == {WETH.lower(): 17_000}
    assert s.gas_spent_wei == 5_500
    assert s.net_profit_wei(WETH) == 3_000
    assert s.success_rate == 0.5
    assert s.gas_efficiency(WETH) == 8_500 / 14_000
    backrun = pnl_summary(ledger_path, strategy="backrun")
    assert (backrun.outcomes, backrun.gas_spent_wei) == ({"reverted": 1, "dry_run": 1}, 2_500)
    assert pnl_summary(ledger_path, since_unix=time.time() + 3600).outcomes == {}


def test_pnl_summary_without_totals_reads_only_the_window(ledger_path: Path) -> None:
    """Submit's gauge loop (four summaries every 5 s) asks for no all-time totals: those scan
    every bundle and tx ever booked, a read that grows for as long as the bot runs."""
    full = pnl_summary(ledger_path, strategy="backrun")
    lean = pnl_summary(ledger_path, strategy="backrun", totals=False)
    assert (lean.bundles, lean.in_flight, lean.txs_sent) == (0, 0, 0)
    assert (lean.outcomes, lean.realized_profit, lean.would_be_profit, lean.gas_spent_wei) == (
        full.outcomes, full.realized_profit, full.would_be_profit, full.gas_spent_wei,
    )  # fmt: skip
    seen: list[str] = []
    real_connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = real_connect(*args, **kwargs)
        db.set_trace_callback(seen.append)
        return db

    with mock.patch.object(sqlite3, "connect", traced):
        pnl_summary(ledger_path, totals=False)
    assert seen and not [sql for sql in seen if "COUNT(*)" in sql], seen


def test_missing_empty_and_corrupt_files(tmp_path: Path) -> None:
    assert read_trades(tmp_path / "none.db") == []
    assert pnl_summary(tmp_path / "none.db").bundles == 0
    assert not (tmp_path / "none.db").exists()  # a reader never creates the file
    sqlite3.connect(tmp_path / "empty.db").execute("CREATE TABLE other (x)").connection.close()
    assert read_trades(tmp_path / "empty.db") == []
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(LedgerUnreadable, match=r"junk\.db"):
        read_trades(tmp_path / "junk.db")
