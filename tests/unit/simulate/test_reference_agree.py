"""reference.agree: pyrevm and py-evm agree on outcome and profit always, and on gas exactly
unless the hot run was the one-journal backrun fallback, whose victim leaves slots warm: then
py-evm's gas may exceed pyrevm's by at most what decision's budget adds (h45's bench runs: a
backrun simulated at 293,422 gas used 319,322 on chain and in py-evm, which halted the backrun
strategy though the fee budget covered it)."""

from __future__ import annotations

from services.simulate.decision import gas_for_fee
from services.simulate.engine import SimResult
from services.simulate.reference import agree

HOT = SimResult(True, 293_422, 10**16)


def test_exact_gas_unless_a_slack_is_given() -> None:
    assert agree(HOT, SimResult(True, 293_422, 10**16))
    assert not agree(HOT, SimResult(True, 293_423, 10**16))
    slack = gas_for_fee(HOT.gas_used, True, 2) - HOT.gas_used
    assert slack == 80_000  # BACKRUN_COLD_BIAS + 2 pairs' first touch
    assert agree(HOT, SimResult(True, 319_322, 10**16), slack)
    assert agree(HOT, SimResult(True, 293_422 + slack, 10**16), slack)
    assert not agree(HOT, SimResult(True, 293_422 + slack + 1, 10**16), slack)
    assert not agree(HOT, SimResult(True, 293_421, 10**16), slack)  # never below ours


def test_outcome_and_profit_must_match_whatever_the_slack() -> None:
    assert not agree(HOT, SimResult(True, 293_422, 10**16 - 1), 80_000)
    assert not agree(HOT, SimResult(False, 293_422, 10**16), 80_000)
