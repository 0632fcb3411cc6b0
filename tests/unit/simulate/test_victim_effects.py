"""A victim's effect is reused only on the state it ran on (services/simulate/effects.py): the
carried slots' values and every account pyrevm loaded for it (here its sender's balance, which
no carried slot shows). In-memory pyrevm, a contract that stores its caller's balance."""

from __future__ import annotations

from pyrevm import EVM, AccountInfo

from services.simulate.effects import VictimEffects
from services.simulate.engine import SimResult, TxSpec, write_cold

SENDER = "0x" + "c1" * 20
STORE = "0x" + "5e" * 20
# CALLER BALANCE PUSH1 0 SSTORE STOP: slot 0 = the caller's balance
CODE = bytes.fromhex("3331600055") + b"\x00"
# PUSH1 0 DUP1 REVERT
REVERTS = bytes.fromhex("600080fd")
VICTIM = TxSpec(SENDER, STORE, b"", 0, 100_000)
CARRIED = [(STORE, 0)]


def evm_with(balance: int, code: bytes = CODE) -> EVM:
    evm = EVM(spec_id="CANCUN")
    evm.insert_account_info(STORE, AccountInfo(code=code))
    evm.insert_account_info(SENDER, AccountInfo(balance=balance))
    return evm


def test_an_effect_is_reused_while_what_it_read_is_unchanged() -> None:
    evm, effects = evm_with(7), VictimEffects()
    assert effects.of(evm, VICTIM, CARRIED) == ([7], [0])
    assert effects.of(evm, VICTIM, CARRIED) == ([7], [0])
    assert (effects.runs, effects.reused) == (1, 1)
    assert evm.journal_state.keys() <= {"0x" + "00" * 20}  # left as found: nothing warm
    assert evm.storage(STORE, 0) == 0


def test_an_account_it_loaded_that_changed_runs_it_again() -> None:
    """No carried slot changed, but the sender's balance did (a newer trace loaded)."""
    evm, effects = evm_with(7), VictimEffects()
    effects.of(evm, VICTIM, CARRIED)
    evm.insert_account_info(SENDER, AccountInfo(balance=9))
    assert effects.of(evm, VICTIM, CARRIED) == ([9], [0])
    assert (effects.runs, effects.reused) == (2, 0)


def test_a_carried_slot_that_changed_runs_it_again() -> None:
    evm, effects = evm_with(7), VictimEffects()
    effects.of(evm, VICTIM, CARRIED)
    write_cold(evm, [(STORE, 0, 3)])
    assert effects.of(evm, VICTIM, CARRIED) == ([7], [3])
    assert (effects.runs, effects.reused) == (2, 0)


def test_a_failure_is_kept_too_and_a_new_head_forgets_everything() -> None:
    evm, effects = evm_with(7, REVERTS), VictimEffects()
    failed, _ = effects.of(evm, VICTIM, CARRIED)
    assert isinstance(failed, SimResult) and failed.victim_failed
    assert effects.of(evm, VICTIM, CARRIED)[0] == failed
    effects.clear()
    assert effects.of(evm, VICTIM, CARRIED)[0] == failed
    assert (effects.runs, effects.reused) == (2, 1)
