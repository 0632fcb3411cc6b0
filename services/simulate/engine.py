"""One bundle on a pyrevm EVM: optional victim tx, then the Executor call, measured exactly.

Everything runs inside one snapshot that is reverted at the end, so the EVM is left as found
(pyrevm's `message_call` keeps its changes otherwise, and warm slots would under-report gas).
Profit is the executor's balance delta of the profit token, read by `balanceOf` calls in the
same snapshot before and after the call.

pyrevm keeps accounts and slots warm across calls until a checkpoint is reverted, so a victim
run first in the same journal leaves our call's gas a little low (what the victim touched is
warm for us, cold on chain). run_backrun runs them as the chain does, as two transactions:
the victim's effect on what our call reads is carried over cold (exact gas); run_bundle with a
victim is the fallback when that set is not known (neither the route's V2 slots nor the
victim's traced prestate: warm.WarmEvm.carried_by), covered by decision's BACKRUN_COLD_BIAS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from mev_common.executor import RevertReason, decode_revert, encode_balance_of
from mev_common.messages import Block
from pyrevm import EVM, BlockEnv, CfgEnv, Env

VIEW_CALLER = "0x" + "00" * 19 + "01"
SPEC = "CANCUN"  # the Executor uses transient storage (EIP-1153)
_GAS_RE = re.compile(r"gas_used:\s*(\d+)")
_OUTPUT_RE = re.compile(r"output:\s*0x([0-9a-fA-F]*)")
_HALT_RE = re.compile(r"reason:\s*([A-Za-z]+)")


class NeedsRefork(Exception):
    """The warm EVM cannot be patched exactly; the reason says why."""


@dataclass(frozen=True)
class BlockEnvSpec:
    """The block a bundle lands in: the head plus one, one block time later."""

    chain_id: int
    number: int
    timestamp: int
    base_fee: int
    gas_limit: int
    coinbase: str = "0x" + "00" * 20

    def pyrevm_block(self) -> BlockEnv:
        return BlockEnv(
            number=self.number,
            coinbase=self.coinbase,
            timestamp=self.timestamp,
            basefee=self.base_fee,
            gas_limit=self.gas_limit,
            difficulty=0,
            prevrandao=b"\x00" * 32,
        )

    def pyrevm_env(self) -> Env:
        return Env(cfg=CfgEnv(chain_id=self.chain_id), block=self.pyrevm_block())


def block_env_after(block: Block, chain_id: int, block_time_s: float) -> BlockEnvSpec:
    """The env of the block our tx lands in: one block after the head, at least 1 s later
    (V2 pairs take the cumulative-price path in a new second: ~+20k gas per pair)."""
    return BlockEnvSpec(
        chain_id=chain_id,
        number=block.number + 1,
        timestamp=block.timestamp + max(1, int(block_time_s)),
        base_fee=block.base_fee_per_gas,
        gas_limit=block.gas_limit or 30_000_000,
    )


@dataclass(frozen=True)
class TxSpec:
    sender: str
    to: str
    data: bytes
    value: int = 0
    gas: int = 1_000_000


@dataclass(frozen=True)
class SimResult:
    """`success` is the Executor call's; `victim_failed` means the backrun has nothing to
    follow. `profit` is signed (a loss in a successful call is impossible by contract)."""

    success: bool
    gas_used: int
    profit: int
    revert: RevertReason | None = None
    victim_failed: bool = False


@dataclass(frozen=True)
class CallOutcome:
    success: bool
    gas_used: int
    output: bytes
    revert: RevertReason | None


def parse_failure(exc: Exception) -> CallOutcome:
    """pyrevm raises `RuntimeError('Revert { gas_used: …, output: 0x… }')` (or a Halt)."""
    text = str(exc)
    gas = _GAS_RE.search(text)
    gas_used = int(gas.group(1)) if gas else 0
    if text.startswith("Revert"):
        out = _OUTPUT_RE.search(text)
        data = bytes.fromhex(out.group(1)) if out else b""
        return CallOutcome(False, gas_used, data, decode_revert(data))
    halt = _HALT_RE.search(text)
    name = f"halt:{halt.group(1)}" if text.startswith("Halt") and halt else "error"
    return CallOutcome(False, gas_used, b"", RevertReason(name, (text[:200],)))


def call(evm: EVM, tx: TxSpec) -> CallOutcome:
    try:
        out = evm.message_call(tx.sender, tx.to, tx.data, value=tx.value, gas=tx.gas)
    except RuntimeError as exc:
        return parse_failure(exc)
    result = evm.result
    gas_used = result.gas_used if result is not None else 0
    return CallOutcome(True, gas_used, bytes(out), None)


def balance_of(evm: EVM, token: str, owner: str) -> int:
    """From an address without code (EIP-3607 rejects a contract as the caller). The word is
    read by hand: eth-abi's generic decoder cost more than the static call itself."""
    out = bytes(evm.message_call(VIEW_CALLER, token, encode_balance_of(owner), is_static=True))
    if len(out) < 32:
        raise ValueError(f"balanceOf returned {len(out)} bytes, not a uint256")
    return int.from_bytes(out[:32], "big")


def run_backrun(
    evm: EVM,
    tx: TxSpec,
    profit_token: str,
    beneficiary: str,
    victim: TxSpec | Sequence[TxSpec],
    carried: list[tuple[str, int]],
) -> SimResult:
    """victim, then tx, as the chain runs them: two transactions, so what the victim touched
    is cold again for tx (one pyrevm journal would leave it warm and tx's gas low by 2.1-2.6k
    an account or slot). The victim runs in a reverted checkpoint (victim_effects); the slots
    of `carried` (what tx reads that the victim may change: its pools' reserve and price slots
    and their token balances) are carried over, cold, into the fork's database for tx's run,
    and put back afterwards. The EVM's state is unchanged afterwards. `victim` may be the txs
    the chain applies before tx, in order (stacking.py): any of them failing is
    `victim_failed`."""
    after = victim_effects(evm, victim, carried)
    if isinstance(after, SimResult):
        return after
    return run_after(evm, tx, profit_token, beneficiary, carried, after)


def victim_effects(
    evm: EVM, victim: TxSpec | Sequence[TxSpec], carried: list[tuple[str, int]]
) -> list[int] | SimResult:
    """The values of `carried` after `victim` (or the txs ahead, in order) runs on the EVM's
    state (left unchanged), or the failure. The same for every tx behind the same victim at the
    same state: a simulation's second run (its final calldata) reuses them instead of
    re-running the victim, and so does every backrun of a traced victim at one head
    (effects.py)."""
    return run_ahead(evm, victim, carried)[0]


def run_ahead(
    evm: EVM, victim: TxSpec | Sequence[TxSpec], carried: list[tuple[str, int]]
) -> tuple[list[int] | SimResult, list[str]]:
    """`victim_effects`, and the accounts the txs ahead loaded (pyrevm's journal before the
    revert): with the slots they touch, what their run depends on (effects.py)."""
    checkpoint = evm.snapshot()
    try:
        for ahead in _ahead(victim):
            outcome = call(evm, ahead)
            if not outcome.success:
                failed = SimResult(False, 0, 0, outcome.revert, victim_failed=True)
                return failed, list(evm.journal_state)
        return [evm.storage(address, slot) for address, slot in carried], list(evm.journal_state)
    finally:
        evm.revert(checkpoint)
        evm.reset_transient_storage()


def run_after(
    evm: EVM,
    tx: TxSpec,
    profit_token: str,
    beneficiary: str,
    carried: list[tuple[str, int]],
    after: list[int],
) -> SimResult:
    """tx on the state `victim_effects` left in `carried` (cold), then `carried` put back."""
    with carried_state(evm, carried, after):
        return run_bundle(evm, tx, profit_token, beneficiary)


@contextmanager
def carried_state(
    evm: EVM,
    carried: list[tuple[str, int]],
    after: list[int],
    before: list[int] | None = None,
) -> Iterator[None]:
    """`after` (victim_effects' values of `carried`) written cold into the fork's database for
    the runs inside, the values before put back on the way out. Every run inside meets the same
    state (run_bundle reverts what it touches), so a simulation's two runs behind the same txs
    ahead (its measuring and its final calldata) share one write each way. Only the slots the
    txs ahead changed are written (a cycle's other pools keep theirs): writing a value the
    database already holds changes nothing, and each write is a checkpoint of its own.
    `before`: `carried`'s values, when the caller has just read them on this state."""
    before = read_slots_at(evm, carried) if before is None else before
    changed = [
        (address, slot, old, new)
        for (address, slot), old, new in zip(carried, before, after, strict=True)
        if old != new
    ]
    write_cold(evm, [(a, s, new) for a, s, _, new in changed])
    try:
        yield
    finally:
        write_cold(evm, [(a, s, old) for a, s, old, _ in changed])


def _ahead(victim: TxSpec | Sequence[TxSpec] | None) -> Sequence[TxSpec]:
    if victim is None:
        return ()
    return (victim,) if isinstance(victim, TxSpec) else victim


def run_bundle(
    evm: EVM,
    tx: TxSpec,
    profit_token: str,
    beneficiary: str,
    victim: TxSpec | Sequence[TxSpec] | None = None,
    balance_before: int | None = None,
) -> SimResult:
    """Run [victim(s),] tx on `evm` and measure; the EVM's state is unchanged afterwards.
    `balance_before`: `profit_balance` already read on this very state (no victim run here)."""
    checkpoint = evm.snapshot()
    try:
        for ahead in _ahead(victim):
            outcome = call(evm, ahead)
            if not outcome.success:
                return SimResult(False, 0, 0, outcome.revert, victim_failed=True)
        if balance_before is not None and victim is not None:
            raise ValueError("balance_before is read without the victims: pass one or the other")
        before = (
            profit_balance(evm, profit_token, beneficiary)
            if balance_before is None
            else balance_before
        )
        outcome = call(evm, tx)
        if not outcome.success:
            return SimResult(False, outcome.gas_used, 0, outcome.revert)
        after = balance_of(evm, profit_token, beneficiary)
        return SimResult(True, outcome.gas_used, after - before)
    finally:
        evm.revert(checkpoint)
        evm.reset_transient_storage()


def profit_balance(evm: EVM, profit_token: str, beneficiary: str) -> int:
    """`beneficiary`'s balance of `profit_token`, read in its own reverted snapshot: a read left
    in place warms the slot and the call after it would under-report gas by 2.1k-4.6k (pyrevm
    keeps warm slots across calls; a reverted checkpoint un-warms them)."""
    read = evm.snapshot()
    try:
        return balance_of(evm, profit_token, beneficiary)
    finally:
        evm.revert(read)


def write_cold(evm: EVM, writes: list[tuple[str, int, int]]) -> None:
    """Write storage into the fork's cache (its database), leaving every account cold.

    pyrevm's `insert_account_storage` writes the database only for an account absent from the
    journal, then loads it (warm, as a journal entry). Each write in its own reverted checkpoint
    undoes that load but keeps the database value, so the next call pays EIP-2929's cold
    prices exactly as the chain does. A write to an account already in the journal would go
    through the journal and be lost on the revert: the journal must be empty between bundles
    (engine.run_bundle and read_slots revert everything they touch; only the coinbase, which
    revm loads without a journal entry and the chain also counts warm, stays)."""
    live = {address.lower() for address in evm.journal_state}
    stuck = sorted({a for a, _, _ in writes if a.lower() in live})
    if stuck:
        raise NeedsRefork(f"accounts {stuck} left in the journal: a patch would be lost")
    for address, slot, value in writes:
        checkpoint = evm.snapshot()
        try:
            evm.insert_account_storage(address, slot, value)
        finally:
            evm.revert(checkpoint)


def account_nonce(evm: EVM, address: str) -> int:
    """An account's nonce, leaving it out of the journal: a plain `evm.basic()` keeps the
    account loaded, so `WarmEvm.load` (which skips live accounts) never refreshed that sender
    again and its nonce stayed at the first read (victims of a busy user were dropped as
    `victim_queued` behind nonces mined long ago)."""
    checkpoint = evm.snapshot()
    try:
        return int(evm.basic(address).nonce)
    finally:
        evm.revert(checkpoint)


def read_slots_at(evm: EVM, places: list[tuple[str, int]]) -> list[int]:
    """`read_slots` over (address, slot) pairs of several accounts, cold afterwards."""
    checkpoint = evm.snapshot()
    try:
        return [evm.storage(address, slot) for address, slot in places]
    finally:
        evm.revert(checkpoint)


def read_slots(evm: EVM, address: str, *slots: int) -> list[int]:
    """Read storage without leaving the slots warm: pyrevm's `storage()` warms what it reads
    for every later call (gas would come out 2k a slot low) unless a checkpoint is reverted."""
    checkpoint = evm.snapshot()
    try:
        return [evm.storage(address, slot) for slot in slots]
    finally:
        evm.revert(checkpoint)
