"""Nonce lane choice (services/submit/lanes.py): a trade goes on a lane where no unsettled trade
of ours would make it wait; a stacked trade goes on its bases' lane; one lane is the single-key
rule exactly."""

from __future__ import annotations

from eth_account import Account

from services.submit.decide import Refusal, SendPlan, decide
from services.submit.keys import Signer
from services.submit.lanes import (
    LaneLoad,
    Lanes,
    UnknownSender,
    choose_lane,
    on_lane,
    waits_behind,
)
from services.submit.limits import Spend
from tests.unit.submit.gate_world import GAS, HEAD, bundle, calldata, policy

GWEI = 10**9
NOTHING: frozenset[str] = frozenset()


def test_one_lane_refuses_a_trade_bidding_above_our_unsettled_cheaper_one() -> None:
    lanes = [LaneLoad(0, {"block-trade": 3 * GWEI})]
    assert choose_lane("backrun", 5 * GWEI, NOTHING, lanes) == (
        f"our unsettled trade block-trade bids {3 * GWEI} < {5 * GWEI} wei/gas: this one "
        "(a later nonce) would land behind it and every tx bidding between"
    )
    assert choose_lane("cheaper", 3 * GWEI, NOTHING, lanes) == 0  # not above: same lane


def test_a_trade_goes_on_a_lane_where_nothing_makes_it_wait() -> None:
    lanes = [LaneLoad(0, {"block-trade": 3 * GWEI}), LaneLoad(1, {}), LaneLoad(2, {})]
    assert choose_lane("backrun", 5 * GWEI, NOTHING, lanes) == 1
    # a lane whose trades all bid more is fine too; the emptier one is preferred
    lanes = [LaneLoad(0, {"a": 9 * GWEI}), LaneLoad(1, {"b": 9 * GWEI, "c": 8 * GWEI})]
    assert choose_lane("x", 5 * GWEI, NOTHING, lanes) == 0
    # every lane holds a cheaper trade: the first lane's reason
    lanes = [LaneLoad(0, {"a": GWEI}), LaneLoad(1, {"b": 2 * GWEI})]
    refusal = choose_lane("x", 5 * GWEI, NOTHING, lanes)
    assert isinstance(refusal, str) and refusal.startswith("our unsettled trade a bids")


def test_a_lane_with_a_nonce_free_comes_first() -> None:
    full = "8 txs unconfirmed (max_in_flight)"
    lanes = [LaneLoad(0, {}, full), LaneLoad(1, {"a": 9 * GWEI})]
    assert choose_lane("x", GWEI, NOTHING, lanes) == 1
    # only a full lane fits: it is chosen, and taking its nonce refuses (the in-flight limit)
    lanes = [LaneLoad(0, {}, full), LaneLoad(1, {"a": GWEI // 2})]
    assert choose_lane("x", GWEI, NOTHING, lanes) == 0


def test_a_stacked_trade_goes_on_its_bases_lane() -> None:
    lanes = [LaneLoad(0, {}), LaneLoad(1, {"victim-backrun": 4 * GWEI}), LaneLoad(2, {})]
    assert choose_lane("stacked", 2 * GWEI, frozenset({"victim-backrun"}), lanes) == 1
    # there, the single-key rule: a base bidding less than it refuses it (no other lane helps)
    assert choose_lane("stacked", 5 * GWEI, frozenset({"victim-backrun"}), lanes) == (
        waits_behind({"victim-backrun": 4 * GWEI}, 5 * GWEI, "stacked")
    )
    split = [LaneLoad(0, {"a": 9 * GWEI}), LaneLoad(1, {"b": 9 * GWEI})]
    assert choose_lane("s", GWEI, frozenset({"a", "b"}), split) == (
        "proven on top of our trades on lanes [0, 1]: no one nonce order puts it after all of them"
    )


def test_lanes_map_senders_and_loads() -> None:
    signers = [Signer(Account.from_key(bytes([i + 1]) * 32)) for i in range(3)]
    lanes = Lanes(signers, max_in_flight=2)
    assert [lane.index for lane in lanes] == [0, 1, 2]
    assert lanes.of(signers[2].address.lower()) is lanes[2]
    assert lanes.of("") is lanes[0]  # a row written before lanes: the one key there was
    try:
        lanes.of("0x" + "99" * 20)
    except UnknownSender as exc:
        assert "none of the keys.lanes keys (3 lanes)" in str(exc)
    else:
        raise AssertionError("an unknown sender must be refused")
    lanes[1].nonces.sync(5)
    lanes[1].nonces.take()
    lanes[1].nonces.take()
    loads = lanes.loads({"a": 7, "b": 8}, {"a": 1, "b": 2})
    assert loads == [
        LaneLoad(0, {}, "nonces not synced with the chain yet"),
        LaneLoad(1, {"a": 7}, "2 txs unconfirmed (max_in_flight)"),
        LaneLoad(2, {"b": 8}, "nonces not synced with the chain yet"),
    ]


def test_a_trade_on_a_traders_lane_carries_the_traders_exact_gas() -> None:
    """Simulate ran `execute` as the owner; from a trader it costs TRADER_EXTRA_GAS more (measured
    in tests/security/test_executor_traders.py): gas used and limit that much more, the net that
    gas at the bundle's fee cap less; lane 0 is the bundle as simulate proved it."""
    proven = bundle(gas_limit=300_000, simulated_gas_used=160_000, net_profit_wei=10**16)
    assert on_lane(proven, 0) is proven
    sent = on_lane(proven, 2)
    assert (sent.gas_limit, sent.simulated_gas_used) == (304_353, 164_353)
    assert sent.net_profit_wei == 10**16 - 4_353 * proven.max_fee_per_gas
    assert sent.model_dump(exclude={"gas_limit", "simulated_gas_used", "net_profit_wei"}) == (
        proven.model_dump(exclude={"gas_limit", "simulated_gas_used", "net_profit_wei"})
    )


def test_on_a_traders_lane_min_profit_must_cover_the_traders_gas() -> None:
    """A minProfit covering the owner's gas limit at the bid fee exactly: lane 0 sends it; on a
    trader's lane the same bundle may cost 4,353 gas more, so the gate refuses it there."""
    fee = 3 * GWEI  # what decide bids at HEAD: 2 x base fee + the default tip
    b = bundle(data=calldata(min_profit=GAS * fee), min_profit=GAS * fee)
    plan = decide(b, policy(), HEAD, Spend())
    assert isinstance(plan, SendPlan) and (plan.gas, plan.max_fee_per_gas) == (GAS, fee)
    refusal = decide(on_lane(b, 1), policy(), HEAD, Spend())
    assert isinstance(refusal, Refusal)
    assert refusal.reason == (
        f"calldata minProfit {GAS * fee} is below the gas it may cost ({GAS + 4_353} gas x "
        f"{fee} wei = {(GAS + 4_353) * fee}): the trade could land at a net loss"
    )
