"""Pure parts of the warm EVM: our executor's balance change from its trades' Swap logs, the
balance mapping found in a trace, pair token order and the exact latency quantiles. Expected
values are worked out here by hand."""

from __future__ import annotations

import pytest
from eth_abi import encode
from mev_common.messages import Log

from services.simulate.pair_state import SWAP_TOPIC, decode_swap, executor_deltas, mapping_slot
from services.simulate.prefetch import balance_slot_in, sorted_tokens
from services.simulate.reference import AccountState
from services.simulate.service import exact_quantiles
from services.simulate.warm import BalanceSlot

A, B = "0x" + "a" * 40, "0x" + "b" * 40  # token0 < token1 in both pairs
P1, P2, E, U = ("0x" + c * 40 for c in "1234")  # pairs, our executor, a user
TOKENS = {P1: (A, B), P2: (A, B)}


def swap(pair: str, sender: str, to: str, ins: tuple[int, int], outs: tuple[int, int],
         tx: str, index: int) -> Log:  # fmt: skip
    data = encode(["uint256"] * 4, [*ins, *outs])
    topics = [SWAP_TOPIC, "0x" + sender[2:].rjust(64, "0"), "0x" + to[2:].rjust(64, "0")]
    return Log(address=pair, topics=topics, data="0x" + data.hex(), log_index=index,
               tx_hash="0x" + tx * 64)  # fmt: skip


def test_swap_log_decodes_to_its_four_amounts_and_two_addresses() -> None:
    s = decode_swap(swap(P1, E, P2, (100, 0), (0, 50), "1", 0))
    assert (s.sender, s.to, s.amounts_in, s.amounts_out) == (E, P2, (100, 0), (0, 50))
    with pytest.raises(ValueError):
        decode_swap(Log(address=P1, topics=[SWAP_TOPIC], data="0x", log_index=0,
                        tx_hash="0x" + "1" * 64))  # fmt: skip


def test_executor_gain_is_out_minus_in_over_its_own_transactions_only() -> None:
    logs = [
        # a user's swap in the same block: not ours, ignored
        swap(P1, U, U, (0, 7), (3, 0), "9", 0),
        # ours, plain: we pay 100 A into P1, its 50 B go on to P2, P2 pays us 110 A
        swap(P1, E, P2, (100, 0), (0, 50), "1", 1),
        swap(P2, E, E, (0, 50), (110, 0), "1", 2),
        # ours, flash: P2 lends us 40 B first (to us), we forward them to P1, P1 pays 90 A to
        # us and we repay P2 with 85 A: 90 - 85 = +5 A, B nets to zero
        swap(P1, E, E, (0, 40), (90, 0), "2", 3),
        swap(P2, E, E, (85, 0), (0, 40), "2", 4),
    ]
    assert executor_deltas(logs, E, TOKENS) == {A: 10 + 5}
    assert executor_deltas(logs[:1], E, TOKENS) == {}


def test_executor_gain_refuses_what_the_logs_cannot_account_for() -> None:
    leak = [swap(P1, E, U, (100, 0), (0, 50), "1", 0)]  # our trade paid an outsider
    with pytest.raises(ValueError, match="output"):
        executor_deltas(leak, E, TOKENS)
    with pytest.raises(ValueError, match="tokens unknown"):
        executor_deltas([swap(P1, E, E, (1, 0), (0, 1), "1", 0)], E, {})


def test_balance_mapping_is_the_one_whose_slots_the_trace_read() -> None:
    solidity = {mapping_slot(P1, 3): 5, mapping_slot(E, 3): 0, 7: 1}
    prestate = {A: AccountState(storage=solidity), B: AccountState(storage={7: 1})}
    assert balance_slot_in(prestate, A, [P1, E]) == BalanceSlot(3, True)
    vyper = {mapping_slot(P1, 0, key_first=False): 1, mapping_slot(E, 0, key_first=False): 2}
    assert balance_slot_in({A: AccountState(storage=vyper)}, A, [P1, E]) == BalanceSlot(0, False)
    assert balance_slot_in(prestate, B, [P1, E]) is None  # read nothing like a balance
    assert balance_slot_in(prestate, P2, [P1]) is None  # not traced at all


def test_pair_tokens_sort_by_address_and_quantiles_are_real_samples() -> None:
    assert sorted_tokens(B, A) == sorted_tokens(A, B) == (A, B)
    assert exact_quantiles([]) == {"count": 0, "p50": None, "p95": None}
    samples = [float(x) for x in range(1, 21)]  # 1..20: nearest rank p50 = 10, p95 = 19
    assert exact_quantiles(samples[::-1]) == {"count": 20, "p50": 10.0, "p95": 19.0}
