"""The loss limits' running spend (services/submit/safety.py) equals, to the wei and field by
field, what a read of the whole window gives, after every step of a random run of the ledger's
writes against a real SQLite file: trades and cancels signed and sent, settlements (on the
loop's connection, on the worker's, from another process), drops, `not_sent` bookings, reorg
re-openings, orphan cancels, a chain reset, trips cleared, the UTC day rolling over and another
native token asked. The oracle is a plain reading of every row (no index, no running figure);
a fresh store's full read must agree with it too."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mev_common.messages import Bundle, Outcome

from services.submit.decide import not_sent
from services.submit.ledger import Ledger
from services.submit.ledger_records import Settled, TxRecord
from services.submit.limits import Spend
from services.submit.safety import SafetyStore, day_start
from tests.unit.submit import gate_world
from tests.unit.submit.gate_world import USDC, WETH
from tests.unit.submit.test_spend_cost import busy_day

LANES = ("0x" + "a1" * 20, "0x" + "B2" * 20, "")  # '' : lane 0 in rows older than lanes
GENESIS = ("0x" + "11" * 32, "0x" + "22" * 32)
START = 1_772_405_000.0  # 2026-03-01 22:43 UTC: the run crosses midnight


class Clock:
    """time.time() for the ledger: strictly increasing (no two bookings share a time)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def oracle(path: Path, token: str | None, now: float) -> Spend:
    """The window's spend from every row, as the loss limits define it."""
    db = sqlite3.connect(path)
    try:
        cleared = db.execute("SELECT MAX(cleared_at) FROM safety_trips").fetchone()[0] or 0.0
        since = max(day_start(now), float(cleared))
        txs = {h: (s, n, g, f, st, r) for h, s, n, g, f, st, r in db.execute(
            "SELECT hash, sender, nonce, gas_limit, max_fee_per_gas, state, resolved_at FROM txs"
        )}  # fmt: skip
        gas = sum(
            int(cost)
            for tx_hash, cost in db.execute("SELECT tx_hash, gas_cost FROM receipts")
            if tx_hash in txs and txs[tx_hash][5] is not None and txs[tx_hash][5] >= since
        )
        tokens = dict(db.execute("SELECT id, profit_token FROM bundles").fetchall())
        mined = sorted(
            (booked, status, bundle_id, int(profit))
            for bundle_id, status, profit, booked in db.execute(
                "SELECT bundle_id, status, realized_profit, booked_unix FROM outcomes"
            )
            if booked >= since and status in ("included", "reverted")
        )
        want = (token or "").lower()
        profit = sum(
            p for _, _, b, p in mined if tokens.get(b) is not None and tokens[b].lower() == want
        )
        worst: dict[tuple[str, int], int] = {}
        for sender, nonce, gas_limit, max_fee, state, _ in txs.values():
            if state in ("signed", "sent"):
                key = (sender.lower(), nonce)
                worst[key] = max(worst.get(key, 0), gas_limit * int(max_fee))
        reverts = 0
        for _, status, _, _ in reversed(mined):
            if status != "reverted":
                break
            reverts += 1
        return Spend(gas, profit, sum(worst.values()), reverts)
    finally:
        db.close()


@dataclass
class Trade:
    bundle: Bundle
    txs: list[TxRecord] = field(default_factory=list)


class Run:
    """A random run of the ledger's writes; `open` trades are in flight, `mined` settled with a
    receipt (what a reorg can take away), `orphans` cancels left sent after their trade."""

    def __init__(self, tmp: Path, rng: random.Random, clock: Clock) -> None:
        self.path = tmp / "ledger.db"
        self.rng, self.clock = rng, clock
        self.ledger = Ledger(self.path)
        self.ledger.bind(31337, GENESIS[0])
        self.other = Ledger(self.path)  # another process writing the same file
        self.other.bind(31337, GENESIS[0])
        self.safety = SafetyStore(self.path, self.ledger)
        self.open: list[Trade] = []
        self.mined: list[Trade] = []
        self.orphans: list[TxRecord] = []
        self.serial, self.revision = 0, 1
        self.nonces = dict.fromkeys(LANES, 0)

    def tx(self, trade: Trade, kind: str, sender: str, nonce: int) -> TxRecord:
        self.serial += 1
        return TxRecord(
            hash=f"0x{self.serial:064x}", bundle_id=trade.bundle.id, kind=kind, nonce=nonce,
            max_fee_per_gas=self.rng.randrange(1, 60) * 10**9 + self.rng.randrange(10**6),
            max_priority_fee_per_gas=10**9, gas_limit=self.rng.randrange(21_000, 900_000),
            deadline_block=110, raw="0x02", state="signed", created_at=self.clock(), sender=sender,
        )  # fmt: skip

    def bundle(self) -> Bundle:
        self.serial += 1
        token = self.rng.choice((WETH, WETH, WETH.lower(), USDC))
        return gate_world.bundle(
            id=f"bundle:o{self.serial}", opportunity_id=f"o{self.serial}", profit_token=token
        )

    def sign(self) -> None:
        sender = self.rng.choice(LANES)
        nonce = self.nonces[sender] + self.rng.choice((0, 0, 1))  # lanes share nonce numbers
        self.nonces[sender] = nonce + 1
        trade = Trade(self.bundle())
        trade.txs.append(self.tx(trade, "trade", sender, nonce))
        assert self.ledger.record_signed(trade.bundle, trade.txs[0], "t", 1)
        self.open.append(trade)

    def cancel(self, trade: Trade) -> None:
        first = trade.txs[0]
        trade.txs.append(self.tx(trade, "cancel", first.sender, first.nonce))
        self.ledger.record_cancel(trade.txs[-1])

    def settle(self, trade: Trade, status: str, how: str) -> None:
        self.open.remove(trade)
        mined = self.rng.choice(trade.txs) if status != "dropped" else None
        left = [t for t in trade.txs[1:] if t is not mined and self.rng.random() < 0.2]
        states = {t.hash: "replaced" for t in trade.txs if t not in left}
        receipt = None
        gas_cost = profit = 0
        if mined is not None:
            states[mined.hash] = "mined" if status == "included" else "reverted"
            gas_cost = self.rng.randrange(10**12, 10**17) * 97 + 1
            profit = self.rng.randrange(-(10**18), 10**19) if status == "included" else 0
            receipt = {
                "tx_hash": mined.hash, "block_number": 100 + self.serial,
                "block_hash": f"0x{self.serial:064x}", "status": int(status == "included"),
                "gas_used": 21_000, "effective_gas_price": "1", "gas_cost": str(gas_cost),
                "realized_profit": str(profit), "event_profit": None,
            }  # fmt: skip
        else:
            states = {t.hash: "dropped" for t in trade.txs}
            left = []
        outcome = Outcome(
            bundle_id=trade.bundle.id, chain_id=trade.bundle.chain_id,
            strategy=trade.bundle.strategy, status=status,
            tx_hash=mined.hash if mined else trade.txs[0].hash, realized_profit=profit,
        )  # fmt: skip
        settled = Settled(trade.bundle, outcome, states, receipt, gas_cost)
        if how == "worker":
            asyncio.run(self.ledger.resolve_off_loop(settled))
        elif how == "other":
            self.other.resolve(settled)
        else:
            self.ledger.resolve(settled)
        if mined is not None:
            self.mined.append(trade)
        self.orphans.extend(left)

    def orphan(self, cancel: TxRecord) -> None:
        self.orphans.remove(cancel)
        state = self.rng.choice(("mined", "reverted", "replaced"))
        receipt = None
        if state != "replaced":
            receipt = {
                "tx_hash": cancel.hash, "block_number": 100 + self.serial,
                "block_hash": f"0x{self.serial:064x}", "status": int(state == "mined"),
                "gas_used": 21_000, "effective_gas_price": "3", "gas_cost": str(63_000),
                "realized_profit": "0", "event_profit": None,
            }  # fmt: skip
        self.ledger.resolve_orphan_cancel(cancel, state, receipt, 21_000, 3, "orphan")

    def step(self) -> str:
        rng = self.rng
        self.clock.now += rng.choice((0.5, 3.0, 40.0, 700.0))
        roll = rng.random()
        if roll < 0.25 or not self.open:
            self.sign()
            return "sign"
        if roll < 0.35:
            self.cancel(rng.choice(self.open))
            return "cancel"
        if roll < 0.42:
            self.ledger.mark_sent(rng.choice(rng.choice(self.open).txs).hash)
            return "send"
        if roll < 0.70:
            status = rng.choice(("included", "included", "reverted", "reverted", "dropped"))
            how = rng.choice(("loop", "worker", "worker", "other"))
            self.settle(rng.choice(self.open), status, how)
            return f"settle {status} on {how}"
        if roll < 0.76:
            trade = Trade(self.bundle())
            self.ledger.book(trade.bundle, not_sent(trade.bundle, "refused"), "t", 1)
            return "not_sent"
        if roll < 0.83 and self.mined:
            trade = rng.choice(self.mined)
            self.mined.remove(trade)
            (self.other if rng.random() < 0.3 else self.ledger).reopen(trade.bundle.id)
            self.open.append(trade)  # its txs are sent again: tracking books them again
            return "reorg"
        if roll < 0.87 and self.orphans:
            self.orphan(rng.choice(self.orphans))
            return "orphan cancel"
        if roll < 0.90:
            self.safety.trip("daily_loss: test", self.revision, now=self.clock())
            self.revision += 1
            self.safety.clear_if_rewritten(self.revision, now=self.clock())
            return "clear"
        if roll < 0.92:
            self.clock.now = day_start(self.clock.now) + 86_400 + rng.choice((0.5, 60.0))
            return "day roll"
        if roll < 0.93:
            genesis = GENESIS[self.revision % 2]
            self.ledger.close_for_chain_reset(31337, genesis, "reset")
            self.open.clear()
            self.orphans.clear()
            return "chain reset"
        return "nothing"

    def close(self) -> None:
        self.safety.close()
        self.other.close()
        self.ledger.close()


@pytest.mark.parametrize("seed", range(6))
def test_the_running_spend_equals_a_full_read_after_every_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    run = Run(tmp_path, random.Random(seed), clock)
    try:
        for number in range(160):
            what = run.step()
            token = WETH if run.rng.random() < 0.9 else USDC
            now = clock.now
            got = run.safety.spend(token, now=now)
            want = oracle(run.path, token, now)
            fresh = SafetyStore(run.path)
            try:
                read = fresh.spend(token, now=now)
            finally:
                fresh.close()
            assert (got, read) == (want, want), f"step {number}: {what}"
    finally:
        run.close()


def test_a_reader_further_behind_than_the_journal_keeps_reads_in_full(tmp_path: Path) -> None:
    """Another process's writes beyond the journal's last JOURNAL_KEEP rows: the running figure
    cannot be caught up from it, and a full read gives the exact figure."""
    ledger = Ledger(tmp_path / "ledger.db")
    safety = SafetyStore(tmp_path / "ledger.db", ledger)
    assert safety.spend(WETH) == Spend()
    other = Ledger(tmp_path / "ledger.db")
    busy_day(other, 3_000)  # 15,000 rows journaled
    now = time.time()
    assert safety.spend(WETH, now=now) == oracle(tmp_path / "ledger.db", WETH, now)
    assert safety.spend(WETH, now=now).gas_spent == sum(10**15 + n for n in range(3_000))
    for store in (safety, other, ledger):
        store.close()
