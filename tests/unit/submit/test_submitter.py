"""The whole submit decision (gate, limits, fees, nonces, trips, cancels) on an in-memory chain
and a real SQLite ledger: exact counts of what was signed and broadcast."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from mev_common import metrics
from mev_common.chain import budget
from mev_common.chain.block_phase import LATE_HEAD
from mev_common.chain.pools import UNISWAP_V2_INIT_CODE_HASH, v2_pair_address
from mev_common.messages import Outcome

from services.submit import settlement
from services.submit.decide import Policy
from services.submit.keys import Signer
from services.submit.ledger import Ledger
from services.submit.safety import SafetyStore
from services.submit.submitter import Submitter
from tests.unit.submit.fake_chain import FakeChain
from tests.unit.submit.gate_world import (
    CONTRACTS,
    FACTORY_A,
    FACTORY_B,
    GWEI,
    HEAD,
    WETH,
    bundle,
    calldata,
    settings,
)

KEY = "0x" + "42" * 32
DAI = to_checksum_address("0x" + "0d" * 20)
PAIR_C = v2_pair_address(FACTORY_A, WETH, DAI, UNISWAP_V2_INIT_CODE_HASH)
PAIR_D = v2_pair_address(FACTORY_B, DAI, WETH, UNISWAP_V2_INIT_CODE_HASH)


class World:
    def __init__(self, tmp: Path, **submit: Any) -> None:
        self.db = tmp / "ledger.db"
        self.settings = settings(**submit)
        self.chain = FakeChain(head=HEAD.number, base_fee=HEAD.next_base_fee)
        self.published: list[Outcome] = []
        self.blocker: str | None = None
        self.revision = 5
        self.ledger = Ledger(self.db)
        self.safety = SafetyStore(self.db)
        self.submitter = self.new_submitter()

    def new_submitter(self) -> Submitter:
        async def publish(outcome: Outcome, trace: str, seen_ns: int, revision: int) -> None:
            self.published.append(outcome)

        return Submitter(
            settings=self.settings,
            ledger=self.ledger,
            pool=self.chain,
            signer=Signer(Account.from_key(KEY)),
            policy=Policy.from_settings(self.settings, CONTRACTS),
            safety=self.safety,
            publish=publish,
            send_blocker=lambda: self.blocker,
            native_token=WETH,
            control_revision=lambda: self.revision,
        )

    async def start(self) -> Submitter:
        await self.submitter.fetch_head()
        await self.submitter.sync_nonces()
        return self.submitter

    def outcome(self, bundle_id: str) -> Outcome:
        [found] = [o for o in self.published if o.bundle_id == bundle_id]
        return found


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


async def test_a_bundle_is_signed_once_even_when_redelivered(world: World) -> None:
    sub = await world.start()
    b = bundle()
    await sub.handle(b, "t", 1)
    await sub.handle(b, "t", 1)  # redelivery: its trade is on the wire
    assert len(world.chain.sent) == 1
    [tx] = world.chain.sent
    assert (tx["nonce"], tx["to"], tx["value"], tx["gas"]) == (0, b.to, 0, b.gas_limit)
    assert (tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]) == (3 * GWEI, GWEI)
    assert [(t.kind, t.state) for t in world.ledger.txs_of(b.id)] == [("trade", "sent")]


async def test_a_forged_bundle_signs_nothing(world: World) -> None:
    sub = await world.start()
    await sub.handle(bundle(value=1), "t", 1)
    assert world.chain.sent == []
    assert world.ledger.txs_of("bundle:o1") == []
    assert world.outcome("bundle:o1").reason == (
        "bundle.value is 1 wei: an executor call never carries value"
    )


async def test_the_head_comes_from_the_chain_not_the_bundle(world: World) -> None:
    sub = await world.start()
    # a bundle claiming block 10**6 is checked against the chain, whose head stays 100
    await sub.handle(bundle(block_number=10**6, deadline_block=10**6 + 1), "t", 1)
    assert world.chain.sent == []
    assert world.outcome("bundle:o1").reason == (
        "stale: block 1000000 does not exist on this chain (head 100)"
    )


async def test_three_reverts_in_a_row_trip_the_stop_until_the_key_is_written_again(
    world: World,
) -> None:
    sub = await world.start()
    for i in range(3):
        b = bundle(
            id=f"bundle:r{i}",
            opportunity_id=f"r{i}",
            block_number=world.chain.head,
            deadline_block=world.chain.head + 2,
        )
        await sub.handle(b, "t", 1)
        world.chain.mine(world.chain.sent[-1]["hash"], status=0)
        await sub.fetch_head()
        assert await sub.track_once() == 1
        assert world.outcome(b.id).status == "reverted"
    assert sub.tripped is not None
    reason = (
        "consecutive_reverts: 3 trades reverted on chain in a row "
        "(submit.max_consecutive_reverts 3)"
    )
    assert sub.tripped.reason == reason
    head = world.chain.head
    fourth = bundle(id="bundle:r3", opportunity_id="r3", block_number=head, deadline_block=head + 2)
    await sub.handle(fourth, "t", 1)
    assert len(world.chain.sent) == 3
    assert world.outcome(fourth.id).reason == f"emergency stop tripped: {reason}"

    restarted = world.new_submitter()  # persisted: a restart does not clear it
    assert restarted.tripped is not None and restarted.tripped.reason == reason
    restarted.stop_key_written(world.revision)  # the watcher replaying the old value
    assert restarted.tripped is not None
    restarted.stop_key_written(world.revision + 1)  # the operator wrote the key again
    assert restarted.tripped is None
    assert world.new_submitter().tripped is None
    # a clear starts a new window: the three old reverts do not count any more
    assert world.safety.spend(WETH).consecutive_reverts == 0


async def test_a_daily_loss_trips_the_stop(tmp_path: Path) -> None:
    world = World(tmp_path, daily_loss_limit=2 * 100_000 * 2 * GWEI - 1)
    sub = await world.start()
    for i in range(2):
        b = bundle(
            id=f"bundle:l{i}",
            opportunity_id=f"l{i}",
            block_number=world.chain.head,
            deadline_block=world.chain.head + 2,
        )
        await sub.handle(b, "t", 1)
        world.chain.mine(world.chain.sent[-1]["hash"], status=0)
        await sub.fetch_head()
        await sub.track_once()
    assert sub.tripped is not None
    assert sub.tripped.reason.startswith("daily_loss: lost 0.0004 ether today (gas 0.0004 ether")


async def test_over_the_tx_cost_cap_trips_and_sends_nothing(tmp_path: Path) -> None:
    world = World(tmp_path, max_tx_cost=400_000 * 3 * GWEI - 1)
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    assert world.chain.sent == []
    assert sub.tripped is not None and sub.tripped.reason.startswith("tx_cost: ")
    assert world.outcome("bundle:o1").reason == sub.tripped.reason


async def test_a_hundred_withdrawals_cause_one_cancel_at_most_the_cap(world: World) -> None:
    sub = await world.start()
    b = bundle()
    await sub.handle(b, "t", 1)
    for _ in range(100):
        await sub.withdraw("o1", "a later swap moves the pool")
    kinds = [t.kind for t in world.ledger.txs_of(b.id)]
    assert kinds == ["trade", "cancel"]
    assert len(world.chain.sent) == 2
    cancel = world.chain.sent[1]
    assert (cancel["nonce"], cancel["value"], cancel["gas"]) == (0, 0, 21_000)
    assert cancel["maxFeePerGas"] <= 50 * GWEI


async def test_cancels_stop_at_the_per_nonce_count_and_at_max_gas_price(tmp_path: Path) -> None:
    world = World(tmp_path, max_cancels_per_nonce=2)
    sub = await world.start()
    b = bundle()
    await sub.handle(b, "t", 1)
    trade = world.ledger.trade_for(b.id)
    assert trade is not None
    for _ in range(5):  # tracking keeps asking to outbid the pending cancel
        await sub._cancel(trade, world.ledger.txs_of(b.id)[-1])
    assert [t.kind for t in world.ledger.txs_of(b.id)] == ["trade", "cancel", "cancel"]

    world2 = World(tmp_path / "2")
    sub2 = await world2.start()
    b2 = bundle(max_fee_per_gas=45 * GWEI)
    await sub2.handle(b2, "t", 1)
    trade2 = world2.ledger.trade_for(b2.id)
    assert trade2 is not None
    for _ in range(3):
        await sub2._cancel(trade2, world2.ledger.txs_of(b2.id)[-1])
    fees = [t["maxFeePerGas"] for t in world2.chain.sent]
    assert all(f <= 50 * GWEI for f in fees), fees
    assert len(fees) == 1 + 3  # the trade and max_cancels_per_nonce (3) cancels, each bumped
    assert fees == sorted(fees) and len(set(fees)) == 4


async def test_the_cap_refuses_a_replacement_that_must_bid_above_it(world: World) -> None:
    sub = await world.start()
    world.chain.base_fee = 23 * GWEI
    world.chain.head += 1
    await sub.fetch_head()  # next base fee 23 gwei: the trade bids 2 x 23 + 1 = 47 gwei
    b = bundle(max_fee_per_gas=50 * GWEI, block_number=world.chain.head)
    b = b.model_copy(update={"deadline_block": world.chain.head + 2})
    await sub.handle(b, "t", 1)
    [trade_tx] = world.chain.sent
    assert trade_tx["maxFeePerGas"] == 47 * GWEI  # a replacement must bid > 52.8 gwei
    await sub.withdraw("o1", "moved")
    assert len(world.chain.sent) == 1  # no cancel above max_gas_price (50 gwei)
    assert [t.kind for t in world.ledger.txs_of(b.id)] == ["trade"]


async def test_past_its_rpc_budget_share_a_bundle_is_let_go_unsigned(world: World) -> None:
    """HyperEVM: a trade costs 3 calls; with the share spent, nothing is signed or sent."""
    sub = await world.start()
    spent = budget.configure(100, 0.05)  # 5 calls a minute for this process
    try:
        spent.spend(3)
        await sub.handle(bundle(), "t", 1)
        assert world.chain.sent == [] and world.ledger.txs_of("bundle:o1") == []
        assert "RPC call budget spent" in world.outcome("bundle:o1").reason
        assert sub.nonces.next_nonce == 0  # no nonce taken
    finally:
        budget.configure(None)


async def test_a_late_polled_head_is_let_go_unsigned(world: World) -> None:
    """HyperEVM's polled head: while ingest's phase estimate says the bundle's block is
    nearly a block old (the next one would come first), nothing is signed or sent."""
    sub = await world.start()
    b = bundle()
    refusals = metrics.LATE_HEAD_REFUSALS._value.get()
    sub.production.saw(b.block_number, time.time_ns() - 5 * 10**9)  # 5 s ago
    await sub.handle(b, "t", 1)
    assert world.chain.sent == [] and world.ledger.txs_of(b.id) == []
    assert world.outcome(b.id).status == "not_sent"
    assert world.outcome(b.id).reason.startswith(LATE_HEAD)
    assert metrics.LATE_HEAD_REFUSALS._value.get() == refusals + 1
    assert sub.nonces.next_nonce == 0  # no nonce taken
    sub.production.saw(b.block_number + 1, None)  # not locked: today's behaviour
    other = bundle(id="bundle:o2", opportunity_id="o2")
    await sub.handle(other, "t", 1)
    assert len(world.chain.sent) == 1


async def test_a_pool_is_settled_first_when_our_trade_may_be_mined_at_the_bundles_block(
    world: World,
) -> None:
    """One trade per pool stays: a bundle through a pool of our in-flight trade is refused,
    unless that trade may be mined at the bundle's block (it was proven on an earlier one):
    then submit reads its receipt first and sends only if the trade did land by that block."""
    sub = await world.start()
    first = bundle()  # proven on HEAD, sent
    await sub.handle(first, "t", 1)
    same_block = bundle(id="bundle:o2", opportunity_id="o2")
    await sub.handle(same_block, "t", 1)  # proven on the same state: refused, no receipt read
    assert world.outcome("bundle:o2").reason.startswith("pool ")
    assert "in our unsettled trade bundle:o1" in world.outcome("bundle:o2").reason
    assert len(world.chain.sent) == 1

    world.chain.head += 1  # HEAD + 1 mined without our trade
    pending = bundle(id="bundle:o3", opportunity_id="o3", block_number=HEAD.number + 1,
                     deadline_block=HEAD.number + 3)  # fmt: skip
    await sub.handle(pending, "t", 1)  # its receipt is read: still on the wire, refused
    assert "in our unsettled trade bundle:o1" in world.outcome("bundle:o3").reason
    assert len(world.chain.sent) == 1

    world.chain.mine(world.chain.sent[0]["hash"], 1)  # our trade lands in HEAD + 2
    landed = bundle(id="bundle:o4", opportunity_id="o4", block_number=HEAD.number + 2,
                    deadline_block=HEAD.number + 4)  # fmt: skip
    await sub.handle(landed, "t", 1)  # proven on the state our trade landed in: sent
    assert world.outcome("bundle:o1").status == "included"
    assert len(world.chain.sent) == 2
    assert world.chain.sent[1]["nonce"] == 1


async def test_the_bundles_of_one_block_settle_our_trades_once_per_lane(world: World) -> None:
    """Settling first reads our lane's nonce (and receipts) as of the bundle's block: once per
    lane and block. Before, every bundle through a pool of our in-flight trade read them again, each
    waiting on its round trips (the gate's tail on the backrun flow: 29 of 82 sent bundles
    waited 9.9 / 63 ms p50 / p95 there)."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    served, reads = world.chain.call, []

    async def call(method: str, params: list[Any] | None = None) -> Any:
        if method == "eth_getTransactionCount" and params and params[1] == "latest":
            reads.append(params)
        return await served(method, params)

    world.chain.call = call  # type: ignore[method-assign]
    world.chain.head += 1  # HEAD + 1 mined without our trade
    for i in (2, 3):
        b = bundle(id=f"bundle:o{i}", opportunity_id=f"o{i}", block_number=HEAD.number + 1,
                   deadline_block=HEAD.number + 3)  # fmt: skip
        await sub.handle(b, "t", 1)
        assert "in our unsettled trade bundle:o1" in world.outcome(b.id).reason
    assert len(reads) == 1
    assert len(world.chain.sent) == 1

    world.chain.mine(world.chain.sent[0]["hash"], 1)  # our trade lands in HEAD + 2
    landed = bundle(id="bundle:o4", opportunity_id="o4", block_number=HEAD.number + 2,
                    deadline_block=HEAD.number + 4)  # fmt: skip
    await sub.handle(landed, "t", 1)  # a newer block: read again, settled, sent
    assert len(reads) == 2
    assert world.outcome("bundle:o1").status == "included"
    assert [tx["nonce"] for tx in world.chain.sent] == [0, 1]


async def test_a_landed_trade_whose_receipt_lags_its_nonce_is_booked_included(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """anvil counts a mined nonce a moment before it serves the receipt: an e2e run booked a
    landed trade as replaced by a tx not ours, its profit missing from the ledger."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)
    tx_hash = world.chain.sent[0]["hash"]
    world.chain.mine(tx_hash, 1)
    lagging = world.chain.receipts.pop(tx_hash)
    served = world.chain.call

    async def call(method: str, params: list[Any] | None = None) -> Any:
        if method == "eth_getTransactionReceipt" and tx_hash not in world.chain.receipts:
            world.chain.receipts[tx_hash] = lagging  # served from the next ask on
            return None
        return await served(method, params)

    world.chain.call = call  # type: ignore[method-assign]
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(settlement.asyncio, "sleep", sleep)
    assert await sub.track_once() == 1
    assert world.outcome("bundle:o1").status == "included"
    # asked again 20 ms on, not 250 ms on: the pass (and the bundles waiting on it) goes on
    assert slept == [0.02]


async def test_a_trade_bidding_above_our_unsettled_one_is_not_signed(world: World) -> None:
    """Sent with the next nonce it would land behind our trade and every tx bidding between
    (conflicts.py), even stacked on it."""
    sub = await world.start()
    await sub.handle(bundle(), "t", 1)  # a block trade: submit.priority_fee (1 gwei)
    above = {"id": "bundle:o2", "opportunity_id": "o2", "after_bundles": ["bundle:o1"],
             "victim_tx_hash": "0x" + "ab" * 32,
             "victim_priority_fee": 2 * GWEI}  # fmt: skip
    await sub.handle(bundle(**above), "t", 1)
    assert len(world.chain.sent) == 1
    refusal = (
        f"our unsettled trade bundle:o1 bids {GWEI} < {2 * GWEI - 1} wei/gas: this one "
        "(a later nonce) would land behind it and every tx bidding between"
    )
    assert world.outcome("bundle:o2").reason == refusal
    world.submitter = world.new_submitter()  # a restart: the bid is read back from the ledger
    sub = await world.start()
    await sub.handle(bundle(**{**above, "id": "bundle:o3", "opportunity_id": "o3"}), "t", 1)
    assert len(world.chain.sent) == 1
    assert world.outcome("bundle:o3").reason == refusal


async def test_no_bundle_passes_the_gate_while_a_settled_trade_is_being_booked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third revert's commit runs off the loop (resolve_off_loop): a bundle of other pools
    handled meanwhile must wait for it and meet the stop it trips, not slip through first."""
    sub = await world.start()
    reverted = []
    for i in range(3):
        head = world.chain.head
        b = bundle(id=f"bundle:r{i}", opportunity_id=f"r{i}", block_number=head,
                   deadline_block=head + 2)  # fmt: skip
        await sub.handle(b, "t", 1)
        world.chain.mine(world.chain.sent[-1]["hash"], status=0)
        await sub.fetch_head()
        reverted.append(b)
        if i < 2:
            assert await sub.track_once() == 1
    booking, release = asyncio.Event(), asyncio.Event()
    resolve = world.ledger.resolve_off_loop

    async def held(*args: Any) -> None:
        booking.set()
        await release.wait()
        await resolve(*args)

    monkeypatch.setattr(world.ledger, "resolve_off_loop", held)
    tracking = asyncio.create_task(sub.track_once())
    await booking.wait()
    head = world.chain.head
    elsewhere = [(PAIR_C, WETH, DAI, 30), (PAIR_D, DAI, WETH, 30)]
    other = bundle(id="bundle:x", opportunity_id="x", data=calldata(elsewhere),
                   block_number=head, deadline_block=head + 2)  # fmt: skip
    handled = asyncio.create_task(sub.handle(other, "t", 1))
    for _ in range(20):  # the handler runs as far as it may
        await asyncio.sleep(0)
    release.set()
    assert await tracking == 1
    await handled
    assert world.outcome(reverted[2].id).status == "reverted"
    assert len(world.chain.sent) == 3
    assert sub.tripped is not None
    assert world.outcome(other.id).reason == f"emergency stop tripped: {sub.tripped.reason}"
