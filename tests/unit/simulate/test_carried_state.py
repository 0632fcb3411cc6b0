"""The txs ahead's effect carried into a backrun's runs (engine.carried_state) writes only the
slots they changed, each way: the same state inside, the state before restored after, and no
write (a checkpoint, an insert and a revert each) for a slot whose value did not move."""

from __future__ import annotations

from typing import Any

from pyrevm import EVM, AccountInfo

from services.simulate.engine import carried_state, read_slots_at, write_cold

POOL, OTHER, TOKEN = "0x" + "a1" * 20, "0x" + "a2" * 20, "0x" + "b1" * 20


class Counting:
    """An EVM that counts storage inserts (the writes carried_state makes)."""

    def __init__(self, evm: EVM) -> None:
        self.evm, self.inserts = evm, 0

    def insert_account_storage(self, address: str, slot: int, value: int) -> None:
        self.inserts += 1
        self.evm.insert_account_storage(address, slot, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.evm, name)


def test_only_the_slots_the_victim_moved_are_written_and_all_come_back() -> None:
    evm = EVM()
    for address in (POOL, OTHER, TOKEN):
        evm.insert_account_info(address, AccountInfo(balance=0, nonce=1))
    carried = [(POOL, 8), (POOL, 9), (POOL, 10), (OTHER, 8), (TOKEN, 3), (TOKEN, 4)]
    before = [11, 12, 13, 14, 15, 16]
    write_cold(evm, [(a, s, v) for (a, s), v in zip(carried, before, strict=True)])
    after = [21, 12, 13, 14, 25, 16]  # the victim moved the pool's reserves and a balance
    counting = Counting(evm)
    with carried_state(counting, carried, after):  # type: ignore[arg-type]
        assert read_slots_at(evm, carried) == after
        assert counting.inserts == 2
    assert read_slots_at(evm, carried) == before
    assert counting.inserts == 4
    assert not evm.journal_state or all(
        a.lower() not in {POOL, OTHER, TOKEN} for a in evm.journal_state
    )  # cold again: the next run pays the chain's prices
