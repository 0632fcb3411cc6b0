"""Pure simulate logic: executor calldata, revert names, pair storage from Sync, decision,
staleness and quarantine. Expected values are computed here by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from mev_common.executor import (
    EXECUTE_SELECTOR,
    ExecHop,
    decode_execute,
    decode_revert,
    encode_execute,
)
from mev_common.messages import Hop, Opportunity, PendingTx
from mev_common.settings import PerformanceSettings, StrategySettings

from services.simulate.decision import (
    BACKRUN_COLD_BIAS,
    FIRST_TOUCH_PER_HOP,
    TakenPools,
    budget_ms,
    decide,
    gas_floor,
    gas_limit_for,
    min_profit_for,
    staleness,
)
from services.simulate.pair_state import PairSlots, apply_sync, decode_sync, mapping_slot
from services.simulate.quarantine import Quarantine, struck_by
from services.simulate.simulator import bundle_id

A, B, C = ("0x" + c * 40 for c in "abc")
P1, P2, P3 = "0x" + "1" * 40, "0x" + "2" * 40, "0x" + "3" * 40
REPO = Path(__file__).resolve().parents[3]


def test_execute_calldata_matches_abi_layout_and_round_trips() -> None:
    hops = [ExecHop(P1, A, B, 30), ExecHop(P2, B, A, 25)]
    data = encode_execute(hops, 5 * 10**18, 123, True)
    assert EXECUTE_SELECTOR.hex() == "8eb6f2bf"
    words = [int.from_bytes(data[4 + 32 * i : 36 + 32 * i], "big") for i in range(13)]
    assert words[:5] == [0x80, 5 * 10**18, 123, 1, 2]
    assert words[5:9] == [int(P1, 16), int(A, 16), int(B, 16), 30]
    assert words[9:13] == [int(P2, 16), int(B, 16), int(A, 16), 25]
    call = decode_execute(data)
    assert call.hops == tuple(
        ExecHop(
            to_checksum_address(h.pair),
            to_checksum_address(h.token_in),
            to_checksum_address(h.token_out),
            h.fee_bps,
        )
        for h in hops
    )
    assert (call.amount_in, call.min_profit, call.flash) == (5 * 10**18, 123, True)
    with pytest.raises(ValueError):
        decode_execute(b"\x00" * 40)


def test_error_selectors_are_the_executor_abi_errors() -> None:
    abi = json.loads((REPO / "contracts/build/Executor.json").read_text())["abi"]
    for entry in (e for e in abi if e["type"] == "error"):
        sig = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
        data = function_signature_to_4byte_selector(sig) + b"\x00" * 32 * len(entry["inputs"])
        assert decode_revert(data).name == entry["name"]


def test_revert_decoding() -> None:
    sel = function_signature_to_4byte_selector("InsufficientProfit(int256,uint256)")
    reason = decode_revert(sel + encode(["int256", "uint256"], [-7, 5]))
    assert (reason.name, reason.args, str(reason)) == (
        "InsufficientProfit",
        (-7, 5),
        "InsufficientProfit(-7, 5)",
    )
    err = function_signature_to_4byte_selector("Error(string)") + encode(
        ["string"], ["UniswapV2: K"]
    )
    assert decode_revert(err).args == ("UniswapV2: K",)
    assert decode_revert(b"").name == "empty"
    assert decode_revert(b"\xde\xad\xbe\xef").name == "unknown"


def test_pair_slots_follow_uniswap_update() -> None:
    start = PairSlots(1000, 4000, 100, 7, 9)
    assert PairSlots.from_words(start.packed(), 7, 9) == start
    after = apply_sync(start, 1100, 3700, 103)
    assert after == PairSlots(
        1100, 3700, 103, 7 + (4000 << 112) // 1000 * 3, 9 + (1000 << 112) // 4000 * 3
    )
    # the second Sync of the same second leaves the cumulative prices alone
    assert apply_sync(after, 1200, 3400, 103) == PairSlots(
        1200, 3400, 103, after.price0_cumulative, after.price1_cumulative
    )
    # an empty pool accrues nothing; uint32 timestamps wrap
    assert apply_sync(PairSlots(0, 0, 5, 0, 0), 10, 20, 9) == PairSlots(10, 20, 9, 0, 0)
    wrapped = apply_sync(PairSlots(1, 1, 2**32 - 1, 0, 0), 1, 1, 2**32 + 1)
    assert (wrapped.timestamp_last, wrapped.price0_cumulative) == (1, (1 << 112) * 2)
    assert decode_sync("0x" + encode(["uint112", "uint112"], [5, 6]).hex()) == (5, 6)
    slot = mapping_slot(A, 3)
    assert slot == int.from_bytes(
        keccak(bytes.fromhex(A[2:].rjust(64, "0")) + (3).to_bytes(32, "big")), "big"
    )


def opportunity(**kw: object) -> Opportunity:
    base: dict[str, object] = dict(
        id="opp-1",
        chain_id=31337,
        strategy="cross_dex_arbitrage",
        trigger="0x" + "ab" * 32,
        block_number=10,
        block_hash="0x" + "cd" * 32,
        hops=[
            Hop(pool=P1, token_in=A, token_out=B, fee_bps=30, amount_in=10, amount_out=20),
            Hop(pool=P2, token_in=B, token_out=A, fee_bps=30, amount_in=20, amount_out=11),
        ],
        amount_in=10,
        profit_token=A,
        max_fee_per_gas=10 * 10**9,
        deadline_block=12,
    )
    base.update(kw)
    return Opportunity(**base)  # type: ignore[arg-type]


STRATEGY = StrategySettings(min_profit=10**14, max_gas_price=50 * 10**9, gas_limit=600_000)


def test_decision_net_of_gas_at_the_fee_cap() -> None:
    opp = opportunity()
    gas = 180_000
    budget = gas + 2 * FIRST_TOUCH_PER_HOP  # two hops, each pair maybe first touched
    assert gas_limit_for(gas, False, 2) == 276_000 == budget * 6 // 5
    # The least profit that passes: the whole gas limit at the fee cap plus the minimum, which
    # is also the calldata's minProfit (90 % of it would not cover the gas).
    threshold = 276_000 * 10 * 10**9 + 10**14
    ok = decide(opp, STRATEGY, threshold, gas)
    assert (ok.ok, ok.max_fee_per_gas, ok.gas_limit) == (True, 10 * 10**9, 276_000)
    assert ok.net_profit_wei == threshold - budget * 10 * 10**9 == 10**14 + 46_000 * 10**10
    assert ok.min_profit == threshold == 2_860_000_000_000_000
    assert decide(opp, STRATEGY, threshold - 1, gas).reason == "unprofitable"
    # Well above the floor the share of the profit is the tighter bound.
    big = decide(opp, STRATEGY, 10**18, gas)
    assert big.min_profit == 9 * 10**17 > gas_floor(276_000, 10 * 10**9, 10**14)
    # Just above the floor: 90 % of it is below the floor, the floor wins.
    near = decide(opp, STRATEGY, threshold + 10**14, gas)
    assert near.min_profit == threshold and (threshold + 10**14) * 9 // 10 < threshold
    assert decide(opp, STRATEGY, 0, gas).reason == "no_profit"
    assert decide(opp, STRATEGY, 10**20, 550_000).reason == "gas_over_limit"
    # the strategy's cap wins over a higher cap from detect
    assert (
        decide(opportunity(max_fee_per_gas=10**12), STRATEGY, 10**18, gas).max_fee_per_gas
        == 50 * 10**9
    )
    victim = PendingTx(chain_id=31337, hash="0x" + "ee" * 32, sender=C, nonce=0, gas=300_000)
    backrun = decide(opportunity(strategy="backrun", victim=victim), STRATEGY, 10**18, gas)
    assert backrun.net_profit_wei == 10**18 - (budget + BACKRUN_COLD_BIAS) * 10 * 10**9
    assert backrun.gas_limit == (180_000 + 50_000 + 30_000) * 6 // 5 == 312_000


def test_min_profit_share_is_exact() -> None:
    assert min_profit_for(10**18 + 7, 0.9) == (10**18 + 7) * 9 // 10
    assert min_profit_for(3, 0.333) == 0
    assert min_profit_for(-5, 0.9) == 0


def test_staleness() -> None:
    opp = opportunity()
    assert staleness(opp, 10, 5.0, 250) is None
    assert staleness(opp, 10, 251.0, 250).reason == "timeout"  # type: ignore[union-attr]
    assert staleness(opp, 11, 5.0, 250).reason == "not_head"  # type: ignore[union-attr]
    assert staleness(opp, 12, 5.0, 250).reason == "past_deadline"  # type: ignore[union-attr]
    assert staleness(opp, 9, 5.0, 250).reason == "ahead"  # type: ignore[union-attr]
    assert staleness(opp, None, 5.0, 250).reason == "ahead"  # type: ignore[union-attr]


def test_a_block_opportunity_has_its_own_budget_and_the_block_bounds_it() -> None:
    perf = PerformanceSettings(decision_timeout_ms=250, block_decision_timeout_ms=5_000)
    block_opp = opportunity()  # no victim: priced on block 10's end state
    victim = PendingTx(chain_id=31337, hash="0x" + "ee" * 32, sender=C, nonce=0, gas=300_000)
    backrun = opportunity(strategy="backrun", victim=victim)
    assert (budget_ms(block_opp, perf), budget_ms(backrun, perf)) == (5_000, 250)
    # 1 s old, older than decision_timeout_ms, still at its block: simulated
    assert staleness(block_opp, 10, 1_000.0, budget_ms(block_opp, perf)) is None
    # the same age a block later: dropped as stale (not_head), whatever its budget
    late = staleness(block_opp, 11, 1_000.0, budget_ms(block_opp, perf))
    assert late is not None and late.reason == "not_head"
    # a backrun of the same age: dropped as before (timeout)
    slow = staleness(backrun, 10, 1_000.0, budget_ms(backrun, perf))
    assert slow is not None and slow.reason == "timeout"
    # the block budget still bounds a backlog
    old = staleness(block_opp, 10, 5_001.0, budget_ms(block_opp, perf))
    assert old is not None and old.reason == "timeout"


def test_a_pool_of_this_blocks_bundle_supersedes_later_opportunities() -> None:
    taken = TakenPools()
    first = opportunity()  # P1 -> P2 at block 10
    assert not taken.taken(first)
    taken.take(first)
    other_hop = Hop(pool=P3, token_in=A, token_out=B, fee_bps=30, amount_in=10, amount_out=20)
    through_p2 = opportunity(id="opp-2", hops=[other_hop, first.hops[1]])
    elsewhere = opportunity(id="opp-3", hops=[other_hop, other_hop])
    assert taken.taken(through_p2) and not taken.taken(elsewhere)
    assert not taken.taken(opportunity(id="opp-4", block_number=11))  # a new block: all free
    taken.take(opportunity(id="opp-5", block_number=11, hops=[other_hop]))
    assert not taken.taken(opportunity(id="opp-6", block_number=11))  # block 10's P1/P2 freed
    assert taken.taken(opportunity(id="opp-7", block_number=11, hops=[other_hop]))
    taken.take(opportunity(id="opp-8", block_number=10))  # late, older block: changes nothing
    assert taken.block == 11 and taken.pools == {P3}


def test_quarantine_after_k_strikes_in_window_then_expires() -> None:
    q = Quarantine(strikes_to_quarantine=3, window_s=10.0, quarantine_s=60.0)
    assert q.strike([P1, B], 0.0) == []
    assert q.strike([P1], 11.0) == []  # the first strike left the window
    assert q.strike([P1], 12.0) == []
    assert q.strike([P1, P1], 13.0) == [P1]  # one revert strikes an address once
    assert q.blocked([P1, P2, B], 14.0) == [P1]
    assert q.active(14.0) == {P1: 59.0}
    assert not q.is_quarantined(P1, 73.0)
    assert q.active(73.0) == {}


def test_a_revert_strikes_pools_and_tokens_an_insufficient_profit_only_the_pools() -> None:
    weth, usdc = to_checksum_address("0x" + "a" * 40), to_checksum_address("0x" + "c" * 40)
    hops = [(P1, usdc), (P2, weth)]  # WETH -> USDC -> WETH
    assert struck_by(hops, weth, "UnexpectedCallback") == [P1, P2, usdc]
    assert struck_by(hops, weth, None) == [P1, P2, usdc]  # no reason decoded: as before
    # detect priced the path higher than it paid: those pools' state or sizing, not USDC's
    assert struck_by(hops, weth, "InsufficientProfit", (-5, 0)) == [P1, P2]
    dai = "0x" + "d" * 40
    assert struck_by(hops, weth, "TransferFailed", (dai,)) == [P1, P2, usdc,
                                                              to_checksum_address(dai)]  # fmt: skip
    assert struck_by(hops, weth, "TransferFailed", (weth.lower(),)) == [P1, P2, usdc]


def test_bundle_id_is_deterministic_and_bounded() -> None:
    assert bundle_id("opp-1") == "bundle:opp-1"
    assert bundle_id("x" * 121) == "bundle:" + "x" * 121  # 128 characters: still plain
    # one more and the id is hashed: sha256 of the opportunity id (`sha256sum` of 122 x's)
    assert bundle_id("x" * 122) == "bundle:" + (
        "ccd16bc19afac2e6fd5b0931420d12e3d7c73731edf307ff681ccd8b590259e9"
    )
