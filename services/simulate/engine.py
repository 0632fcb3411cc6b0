"""One bundle on a pyrevm EVM: optional victim tx, then the Executor call, measured exactly.

Everything runs inside one snapshot that is reverted at the end, so the EVM is left as found
(pyrevm's `message_call` keeps its changes otherwise, and warm slots would under-report gas).
Profit is the executor's balance delta of the profit token, read by `balanceOf` calls in the
same snapshot before and after the call.

pyrevm keeps accounts and slots warm across calls until a checkpoint is reverted, so a victim
run first leaves our call's gas a little low (what the victim touched is warm for us, cold on
chain): the decision adds `BACKRUN_COLD_BIAS` for backruns (see decision.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_abi import decode
from mev_common.executor import RevertReason, decode_revert, encode_balance_of
from pyrevm import EVM, BlockEnv, CfgEnv, Env

VIEW_CALLER = "0x" + "00" * 19 + "01"
SPEC = "CANCUN"  # the Executor uses transient storage (EIP-1153)
_GAS_RE = re.compile(r"gas_used:\s*(\d+)")
_OUTPUT_RE = re.compile(r"output:\s*0x([0-9a-fA-F]*)")
_HALT_RE = re.compile(r"reason:\s*([A-Za-z]+)")


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
    # from an address without code (EIP-3607 rejects a contract as the caller)
    out = evm.message_call(VIEW_CALLER, token, encode_balance_of(owner), is_static=True)
    return int(decode(["uint256"], bytes(out))[0])


def run_bundle(
    evm: EVM, tx: TxSpec, profit_token: str, beneficiary: str, victim: TxSpec | None = None
) -> SimResult:
    """Run [victim,] tx on `evm` and measure; the EVM's state is unchanged afterwards."""
    checkpoint = evm.snapshot()
    try:
        if victim is not None:
            outcome = call(evm, victim)
            if not outcome.success:
                return SimResult(False, 0, 0, outcome.revert, victim_failed=True)
        # read in its own reverted snapshot: a read left in place warms the slot and the
        # call after it would under-report gas by 2.1k-4.6k (pyrevm keeps warm slots across
        # calls; a reverted checkpoint un-warms them)
        read = evm.snapshot()
        before = balance_of(evm, profit_token, beneficiary)
        evm.revert(read)
        outcome = call(evm, tx)
        if not outcome.success:
            return SimResult(False, outcome.gas_used, 0, outcome.revert)
        after = balance_of(evm, profit_token, beneficiary)
        return SimResult(True, outcome.gas_used, after - before)
    finally:
        evm.revert(checkpoint)
        evm.reset_transient_storage()
