"""The ledger bound to its chain instance, chain_reset, the migration, stale bundles: no chain."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mev_common.messages import Bundle
from mev_common.runtime import RefuseToStart
from mev_common.settings import ConfigError, load_settings

from services.submit.chain_binding import ChainIdentity, bind_ledger, binding_action
from services.submit.ledger import MIGRATIONS, SCHEMA, Ledger
from services.submit.ledger_records import TxRecord
from services.submit.reorg import ReorgWatch
from services.submit.stale import BlockHashes
from tests.support.stack import write_config

OLD = "0x" + "01" * 32
NEW = "0x" + "02" * 32


def bundle(bundle_id: str) -> Bundle:
    return Bundle(
        id=bundle_id,
        opportunity_id=f"opp-{bundle_id}",
        chain_id=31337,
        strategy="cyclic_arbitrage",
        block_number=500,
    )


def tx(bundle_id: str, nonce: int, kind: str = "trade", state: str = "sent") -> TxRecord:
    return TxRecord(
        hash="0x" + f"{nonce:02x}{len(kind):02x}" * 16,
        bundle_id=bundle_id,
        kind=kind,
        nonce=nonce,
        max_fee_per_gas=10,
        max_priority_fee_per_gas=1,
        gas_limit=21_000,
        deadline_block=502,
        raw="0x",
        state=state,
        created_at=1.0,
    )


def test_binding_action_binds_keeps_resets_or_refuses_naming_both_hashes() -> None:
    new = ChainIdentity(31337, NEW)
    assert binding_action(None, new, "refuse", "db") == "bind"
    assert binding_action((31337, NEW), new, "refuse", "db") == "same"
    assert binding_action((31337, OLD), new, "reset", "db") == "reset"
    with pytest.raises(RefuseToStart) as refused:
        binding_action((31337, OLD), new, "refuse", "data/mev-bot.db")
    text = str(refused.value)
    assert OLD in text and NEW in text
    assert "database.on_chain_change: reset" in text and "data/mev-bot.db" in text
    assert refused.value.exit_code == 2


def test_reset_closes_every_in_flight_trade_as_chain_reset_and_rebinds(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    assert bind_ledger(ledger, ChainIdentity(31337, OLD), "refuse") == []
    assert ledger.binding() == (31337, OLD)
    assert ledger.record_signed(bundle("b1"), tx("b1", 7), "", 0)
    ledger.record_cancel(tx("b1", 7, kind="cancel"))
    assert ledger.record_signed(bundle("b2"), tx("b2", 8, state="signed"), "", 0)

    with pytest.raises(RefuseToStart):
        bind_ledger(ledger, ChainIdentity(31337, NEW), "refuse")
    assert len(ledger.unresolved()) == 3  # a refusal changes nothing

    closed = bind_ledger(ledger, ChainIdentity(31337, NEW), "reset")
    assert sorted(o.bundle_id for o in closed) == ["b1", "b2"]
    assert {o.status for o in closed} == {"chain_reset"}
    assert all(OLD in o.reason and NEW in o.reason for o in closed)
    assert ledger.unresolved() == []
    assert ledger.binding() == (31337, NEW)
    assert [p.outcome.status for p in ledger.unpublished()] == ["chain_reset", "chain_reset"]
    states = ledger._db.execute("SELECT state, COUNT(*) FROM txs GROUP BY state").fetchall()
    assert states == [("chain_reset", 3)]
    ledger.close()


def test_an_older_ledger_file_is_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)  # a file as the previous release left it: user_version 0
    raw.executescript(SCHEMA)
    raw.close()
    ledger = Ledger(path)
    assert ledger._db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 4
    columns = {r[1] for r in ledger._db.execute("PRAGMA table_info(receipts)")}
    assert "genesis_hash" in columns
    indexes = {
        r[0] for r in ledger._db.execute("SELECT name FROM sqlite_master WHERE type='index'")
    }
    assert {"txs_resolved_at", "outcomes_booked_unix", "outcomes_unpublished"} <= indexes
    assert "receipts_block_number" in indexes
    plan = ledger._db.execute(  # the loss limits' window read uses it, not a scan
        "EXPLAIN QUERY PLAN SELECT status FROM outcomes WHERE booked_unix >= ?", (0,)
    ).fetchall()
    assert any("outcomes_booked_unix" in str(row[-1]) for row in plan), plan
    assert ledger.binding() is None  # bound to the chain it meets at the next start
    ledger.bind(31337, NEW)
    ledger.close()
    again = Ledger(path)  # a migrated file opens again without re-running its steps
    assert again.binding() == (31337, NEW)
    again.close()


def test_config_reset_only_for_a_devnet_chain_id(tmp_path: Path) -> None:
    ok = write_config(
        tmp_path / "a", "nats://127.0.0.1:1", 31337, database={"on_chain_change": "reset"}
    )
    assert load_settings(ok).database.on_chain_change == "reset"
    bad = write_config(
        tmp_path / "b", "nats://127.0.0.1:1", 999, database={"on_chain_change": "reset"}
    )
    with pytest.raises(ConfigError) as err:
        load_settings(bad)
    assert "database.on_chain_change" in str(err.value) and "must use refuse" in str(err.value)
    default = write_config(tmp_path / "c", "nats://127.0.0.1:1", 999)
    assert load_settings(default).database.on_chain_change == "refuse"


def test_block_hashes_refuse_a_block_of_another_chain() -> None:
    chain = {3: {"hash": "0x" + "aa" * 32}}
    fetched: list[int] = []

    async def fetch(number: int) -> dict[str, Any] | None:
        fetched.append(number)
        return chain.get(number)

    blocks = BlockHashes(fetch, keep=2)

    async def run() -> None:
        assert await blocks.stale_reason(3, None, 3) is None
        assert await blocks.stale_reason(3, "0x" + "AA" * 32, 3) is None  # cached: no fetch
        assert fetched == [3]
        ahead = await blocks.stale_reason(500, None, 3)
        assert ahead == "stale: block 500 does not exist on this chain (head 3)"
        other = await blocks.stale_reason(3, "0x" + "bb" * 32, 3)
        assert other == (
            f"stale: block 3 is 0x{'aa' * 32} on this chain, the bundle's is 0x{'bb' * 32}"
        )
        assert blocks.streamed(3) is None  # fetched, not from the stream: no proof of reorgs
        blocks.saw(4, "0x" + "cc" * 32, streamed=True)
        assert blocks.streamed(4) == "0x" + "cc" * 32
        blocks.saw(5, "0x" + "dd" * 32, streamed=True)
        blocks.forget_from(5)
        assert blocks.streamed(5) is None
        assert sorted(blocks._hashes) == [4]  # keep=2 dropped block 3, the reorg block 5

    asyncio.run(run())


def test_reorg_watch_checks_the_highest_receipt_then_finds_every_replaced_one() -> None:
    a, b, c = "0x" + "0a" * 32, "0x" + "0b" * 32, "0x" + "0c" * 32
    booked = [("b3", 12, c), ("b2", 11, b), ("b1", 10, a)]  # highest first, as the ledger
    chain: dict[int, str | None] = {10: a, 11: b, 12: c}
    asked: list[list[int]] = []

    async def fetch(numbers: list[int]) -> dict[int, str | None]:
        asked.append(numbers)
        return {n: chain.get(n) for n in numbers}

    watch = ReorgWatch(depth=5)

    async def run() -> None:
        assert await watch.check(13, lambda since: booked, fetch) == []
        assert asked == [[12]]  # one call: the highest receipt is still canonical
        assert await watch.check(13, lambda since: booked, fetch) == []  # same head: no call
        assert asked == [[12]]
        chain[11], chain[12] = "0x" + "1b" * 32, None  # fork at 11, the new branch is shorter
        assert await watch.check(14, lambda since: booked, fetch) == ["b3", "b2"]
        assert asked[-1] == [10, 11, 12]
        seen: list[int] = []
        assert await ReorgWatch(depth=5).check(20, lambda s: seen.append(s) or [], fetch) == []
        assert seen == [15]
        assert await ReorgWatch(depth=0).check(20, lambda s: booked, fetch) == []

    asyncio.run(run())


def _receipts(ledger: Ledger, blocks: range) -> None:
    """A trade and its receipt at each block (raw rows: only their block numbers matter)."""
    ledger._db.executemany(
        "INSERT INTO txs (hash, bundle_id, kind, nonce, max_fee_per_gas, "
        "max_priority_fee_per_gas, gas_limit, deadline_block, raw, state, created_at) "
        "VALUES (?, ?, 'trade', ?, '1', '1', 21000, ?, '0x', 'mined', 1.0)",
        [(f"0x{n:064x}", f"b{n}", n, n + 2) for n in blocks],
    )
    ledger._db.executemany(
        "INSERT INTO receipts (tx_hash, block_number, block_hash, status, gas_used, "
        "effective_gas_price, gas_cost, realized_profit, genesis_hash) "
        "VALUES (?, ?, ?, 1, 21000, '1', '21000', '0', ?)",
        [(f"0x{n:064x}", n, f"0x{n:064x}", NEW) for n in blocks],
    )
    ledger._db.commit()


def test_the_reorg_read_costs_the_same_on_a_ledger_of_any_length(tmp_path: Path) -> None:
    """The reorg check reads the receipts of the last `reorg_depth` blocks on every new head,
    on submit's event loop: its work (SQLite's VM steps, counted) must not grow with the
    receipts booked before them (it did: a scan of every receipt ever booked)."""
    steps: list[int] = []

    def vm_steps(ledger: Ledger, head: int) -> int:
        count = [0]

        def step() -> int:
            count[0] += 1
            return 0

        ledger._db.set_progress_handler(step, 1)
        try:
            assert len(ledger.recent_receipts(head - 9)) == 10
        finally:
            ledger._db.set_progress_handler(None, 1)
        return count[0]

    for old in (10, 1_000):  # receipts booked long before the last 10 blocks
        ledger = Ledger(tmp_path / f"{old}.db")
        ledger.bind(31337, NEW)
        _receipts(ledger, range(1, old + 11))
        steps.append(vm_steps(ledger, old + 10))
        ledger.close()
    assert steps[1] == steps[0], steps
