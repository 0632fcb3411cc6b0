"""The loss limits' spend as a running figure (services/submit/running_spend.py): the ledger's
own writes keep it exact to the wei without reading the ledger again, a write by any other
connection is seen, and the gate and the loss limit still hold at their edges to the wei."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from mev_common.messages import Bundle, Outcome

from services.submit.decide import Refusal, SendPlan, decide, not_sent
from services.submit.ledger import Ledger
from services.submit.ledger_records import Settled, TxRecord
from services.submit.limits import Limits, Spend, trip_reason
from services.submit.safety import SafetyStore
from tests.unit.submit import gate_world
from tests.unit.submit.gate_world import HEAD, WETH

LANE_A, LANE_B = "0x" + "a1" * 20, "0x" + "b2" * 20
GWEI = 10**9


def tx(n: int, *, sender: str = LANE_A, nonce: int = 3, fee: int = 10 * GWEI, kind: str = "trade",
       bundle_id: str = "") -> TxRecord:  # fmt: skip
    return TxRecord(
        hash=f"0x{n:064x}", bundle_id=bundle_id or f"bundle:o{n}", kind=kind, nonce=nonce,
        max_fee_per_gas=fee, max_priority_fee_per_gas=GWEI, gas_limit=400_000,
        deadline_block=102, raw="0x02", state="signed", created_at=time.time(), sender=sender,
    )  # fmt: skip


class Reads:
    """SELECTs the safety store ran (each a read of the ledger's tables)."""

    def __init__(self, safety: SafetyStore) -> None:
        self.statements: list[str] = []
        safety._db.set_trace_callback(self.statements.append)

    def count(self) -> int:
        return sum(s.startswith("SELECT") for s in self.statements)


def settled(bundle: Bundle, trade: TxRecord, status: str, gas_cost: int, profit: int) -> Settled:
    """`trade` mined (`included` or `reverted`) at block 101 for `gas_cost`, earning `profit`."""
    outcome = Outcome(
        bundle_id=bundle.id, chain_id=bundle.chain_id, strategy=bundle.strategy, status=status,
        tx_hash=trade.hash, realized_profit=profit,
    )  # fmt: skip
    receipt: dict[str, object] = {
        "tx_hash": trade.hash, "block_number": 101, "block_hash": "0x" + "11" * 32,
        "status": int(status == "included"), "gas_used": 21_000, "effective_gas_price": "1",
        "gas_cost": str(gas_cost), "realized_profit": str(profit), "event_profit": None,
    }  # fmt: skip
    state = "mined" if status == "included" else "reverted"
    return Settled(bundle, outcome, {trade.hash: state}, receipt, gas_cost)


def world(tmp: Path) -> tuple[Ledger, SafetyStore, Reads]:
    ledger = Ledger(tmp / "ledger.db")
    safety = SafetyStore(tmp / "ledger.db", ledger)
    return ledger, safety, Reads(safety)


def test_the_ledgers_own_writes_keep_it_exact_without_a_read(tmp_path: Path) -> None:
    ledger, safety, reads = world(tmp_path)
    assert safety.spend(WETH) == Spend()
    read_once = reads.count()
    one = gate_world.bundle(id="bundle:o1", opportunity_id="o1")
    assert ledger.record_signed(one, tx(1, bundle_id=one.id), "t", 1)
    assert safety.spend(WETH) == Spend(in_flight_cost=400_000 * 10 * GWEI)
    cancel = tx(2, fee=30 * GWEI, kind="cancel", bundle_id=one.id)  # its nonce, a higher fee
    ledger.record_cancel(cancel)
    assert safety.spend(WETH) == Spend(in_flight_cost=400_000 * 30 * GWEI)  # one can be mined
    two = gate_world.bundle(id="bundle:o3", opportunity_id="o3")
    assert ledger.record_signed(two, tx(3, sender=LANE_B, bundle_id=two.id), "t", 1)
    # another lane's nonce 3 is another tx that may be mined: both count
    both = Spend(in_flight_cost=400_000 * 30 * GWEI + 400_000 * 10 * GWEI)
    assert safety.spend(WETH) == both
    ledger.mark_sent(tx(1).hash)
    three = gate_world.bundle(id="bundle:o4", opportunity_id="o4")
    ledger.book(three, not_sent(three, "refused"), "t", 1)
    ledger.mark_published(three.id)
    assert safety.spend(WETH) == both
    assert reads.count() == read_once  # none of these writes read the ledger again
    fresh = SafetyStore(tmp_path / "ledger.db")  # what a read of the file says
    assert fresh.spend(WETH) == both


async def test_a_settlement_and_an_outside_write_are_read_again(tmp_path: Path) -> None:
    ledger, safety, reads = world(tmp_path)
    one = gate_world.bundle(id="bundle:o1", opportunity_id="o1")
    trade = tx(1, bundle_id=one.id)
    assert ledger.record_signed(one, trade, "t", 1)
    assert safety.spend(WETH).in_flight_cost == 400_000 * 10 * GWEI
    gas_cost, profit = 21_000 * 7 * GWEI + 1, 3 * 10**15 + 7
    await ledger.resolve_off_loop(settled(one, trade, "included", gas_cost, profit))
    before = reads.count()
    assert safety.spend(WETH) == Spend(gas_spent=gas_cost, native_profit=profit)
    assert reads.count() > before  # the worker's commit: read again
    # an operator's write on its own connection (another process): a tx back in flight
    outside = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    outside.execute("UPDATE txs SET state = 'sent' WHERE hash = ?", (trade.hash,))
    assert safety.spend(WETH).in_flight_cost == 400_000 * 10 * GWEI
    outside.execute("UPDATE txs SET state = 'dropped' WHERE hash = ?", (trade.hash,))
    assert safety.spend(WETH).in_flight_cost == 0
    # and a clear written from outside starts a new window: the settled gas leaves it
    later = time.time() + 1
    outside.execute(
        "INSERT INTO safety_trips (reason, tripped_at, control_revision, cleared_at, "
        "cleared_revision) VALUES ('daily_loss: x', 1, 1, ?, 2)",
        (later,),
    )
    assert safety.spend(WETH, now=later + 1) == Spend()


def test_the_gate_refuses_past_the_gas_budget_to_the_wei(tmp_path: Path) -> None:
    ledger, safety, reads = world(tmp_path)
    safety.spend(WETH)
    read_once = reads.count()
    one = gate_world.bundle(id="bundle:o1", opportunity_id="o1")
    assert ledger.record_signed(one, tx(1, bundle_id=one.id), "t", 1)
    plan = decide(gate_world.bundle(), gate_world.policy(), HEAD, Spend())
    assert isinstance(plan, SendPlan)
    in_flight = 400_000 * 10 * GWEI
    edge = gate_world.policy(daily_gas_budget=in_flight + plan.max_cost)
    assert isinstance(decide(gate_world.bundle(), edge, HEAD, safety.spend(WETH)), SendPlan)
    over = gate_world.policy(daily_gas_budget=in_flight + plan.max_cost - 1)
    refused = decide(gate_world.bundle(), over, HEAD, safety.spend(WETH))
    assert isinstance(refused, Refusal) and refused.trip
    assert refused.reason.startswith("daily_gas_budget: spent 0 wei + in flight 0.004 ether")
    assert reads.count() == read_once  # the figure in memory, not a read


async def test_the_loss_limit_trips_past_the_limit_to_the_wei(tmp_path: Path) -> None:
    ledger, safety, _ = world(tmp_path)
    one = gate_world.bundle(id="bundle:o1", opportunity_id="o1")
    trade = tx(1, bundle_id=one.id)
    assert ledger.record_signed(one, trade, "t", 1)
    safety.spend(WETH)
    gas_cost = 400_000 * 7 * GWEI + 13
    await ledger.resolve_off_loop(settled(one, trade, "reverted", gas_cost, 0))
    spend = safety.spend(WETH)
    assert spend == Spend(gas_spent=gas_cost, consecutive_reverts=1)
    at_limit = Limits(10**18, 10**18, gas_cost, 5)
    assert trip_reason(at_limit, spend) is None
    reason = trip_reason(Limits(10**18, 10**18, gas_cost - 1, 5), spend)
    assert reason is not None and reason.startswith("daily_loss: lost 0.002800000000000013 ether")
