"""The reference engine: the same bundle on py-evm, from a recorded pre-state.

A second, independent EVM implementation catches what one engine alone cannot: a pyrevm bug,
a wrong block env, a patch that left state wrong. py-evm starts from a `Prestate` (every
account and slot the bundle touches at the block, recorded with the RPC's prestateTracer) and
the same block env as the warm pyrevm EVM; the two must agree on success, gas used and profit.
(An in-memory pyrevm loaded from the same pre-state is not a fair twin: pyrevm counts slots
inserted without a fork as warm, so its gas comes out low.) py-evm takes ~35 ms a swap,
so at run time it checks a sample, off the hot path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eth.constants import BLANK_ROOT_HASH
from eth.db.atomic import AtomicDB
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.state import CancunState
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode
from eth_utils import to_canonical_address
from mev_common.executor import decode_revert, encode_balance_of
from mev_common.wire_types import checksum

from services.simulate.engine import VIEW_CALLER, BlockEnvSpec, SimResult, TxSpec
from services.simulate.known_code import code_bytes

RpcCall = Callable[[str, list[Any]], Awaitable[Any]]
REFERENCE_BALANCE = 10**30  # the tx sender pays gas in py-evm; pyrevm does not charge it


@dataclass
class AccountState:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: dict[int, int] = field(default_factory=dict)


Prestate = dict[str, AccountState]


def merge_trace(prestate: Prestate, trace: Mapping[str, Any]) -> None:
    """Add a prestateTracer result; the first value seen for an account or slot wins (it is
    the state before the bundle's first tx). Addresses go through the messages' cached
    checksum: eth_utils' cost ~0.1 ms each, ~90% of a victim trace's merge on the event loop,
    and traces name the same routers, pairs and tokens again and again."""
    for address, entry in trace.items():
        acct_address = checksum(address)
        acct = prestate.setdefault(acct_address, AccountState())
        if "balance" in entry and not acct.balance:
            acct.balance = int(entry["balance"], 16)
        if "nonce" in entry and not acct.nonce:
            acct.nonce = int(entry["nonce"])
        if entry.get("code") and not acct.code:
            acct.code = code_bytes(acct_address, entry["code"])
        for slot, value in (entry.get("storage") or {}).items():
            acct.storage.setdefault(int(slot, 16), int(value, 16))


def _call(tx: TxSpec) -> dict[str, str]:
    return {
        "from": tx.sender,
        "to": tx.to,
        "data": "0x" + tx.data.hex(),
        "value": hex(tx.value),
        "gas": hex(tx.gas),
    }


async def fetch_prestate(
    rpc: RpcCall, txs: list[TxSpec], block_number: int, env: BlockEnvSpec
) -> Prestate:
    """Every account and slot `txs` touch at `block_number`, traced under `env`'s number and
    time (the new-second path of V2 pairs reads the cumulative-price slots)."""
    prestate: Prestate = {}
    overrides = {"number": hex(env.number), "time": hex(env.timestamp)}
    for tx in txs:
        call = _call(tx)
        trace = await rpc(
            "debug_traceCall",
            [call, hex(block_number), {"tracer": "prestateTracer", "blockOverrides": overrides}],
        )
        merge_trace(prestate, trace)
    return prestate


async def fetch_bundle_prestate(
    rpc: RpcCall, txs: list[TxSpec], block_number: int, env: BlockEnvSpec
) -> Prestate:
    """`fetch_prestate` for a bundle run in order (victim, then backrun): each tx after the
    first is traced on the state the earlier ones leave (their diffMode post-state as state
    overrides), not on the block's. Traced alone on the block's state, a backrun follows
    another path than after its victim and leaves out slots it reads there: py-evm then read
    them as zero and reverted bundles that landed (a halt on the backrun flow, wave 8)."""
    prestate: Prestate = {}
    after: dict[str, dict[str, Any]] = {}  # state overrides: what the earlier txs wrote
    overrides = {"number": hex(env.number), "time": hex(env.timestamp)}
    for k, tx in enumerate(txs):
        call = _call(tx)
        options: dict[str, Any] = {"tracer": "prestateTracer", "blockOverrides": overrides}
        if after:
            options["stateOverrides"] = after
        merge_trace(prestate, await rpc("debug_traceCall", [call, hex(block_number), options]))
        if k < len(txs) - 1:
            diff = {**options, "tracerConfig": {"diffMode": True}}
            posted = await rpc("debug_traceCall", [call, hex(block_number), diff])
            merge_overrides(after, posted.get("post") or {})
    return prestate


def merge_overrides(into: dict[str, dict[str, Any]], post: Mapping[str, Any]) -> None:
    """Fold a diffMode post-state into eth_call state overrides (later writes win)."""
    for address, entry in post.items():
        acct = into.setdefault(checksum(address), {})
        if "balance" in entry:
            acct["balance"] = entry["balance"]
        if "nonce" in entry:
            acct["nonce"] = hex(int(entry["nonce"]))
        if entry.get("code"):
            acct["code"] = entry["code"]
        for slot, value in (entry.get("storage") or {}).items():
            acct.setdefault("stateDiff", {})[slot] = value


def pyevm_state(prestate: Prestate, env: BlockEnvSpec) -> CancunState:
    context = ExecutionContext(
        coinbase=to_canonical_address(env.coinbase),
        timestamp=env.timestamp,
        block_number=env.number,
        difficulty=0,
        mix_hash=b"\x00" * 32,
        gas_limit=env.gas_limit,
        prev_hashes=(),
        chain_id=env.chain_id,
        base_fee_per_gas=env.base_fee,
        excess_blob_gas=0,
    )
    state = CancunState(AtomicDB(), context, BLANK_ROOT_HASH)
    for address, acct in prestate.items():
        raw = to_canonical_address(address)
        state.set_balance(raw, acct.balance)
        state.set_nonce(raw, acct.nonce)
        if acct.code:
            state.set_code(raw, acct.code)
        for slot, value in acct.storage.items():
            state.set_storage(raw, slot, value)
    state.persist()
    return state


@dataclass(frozen=True)
class _Applied:
    success: bool
    gas_used: int
    output: bytes


def _apply(state: CancunState, tx: TxSpec, base_fee: int, chain_id: int) -> _Applied:
    sender = to_canonical_address(tx.sender)
    need = REFERENCE_BALANCE + tx.value
    if state.get_balance(sender) < need:
        state.set_balance(sender, need)
    unsigned = CancunVM.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
        chain_id=chain_id,
        nonce=state.get_nonce(sender),
        max_priority_fee_per_gas=0,
        max_fee_per_gas=base_fee,
        gas=tx.gas,
        to=to_canonical_address(tx.to),
        value=tx.value,
        data=tx.data,
        access_list=(),
    )
    spoofed = SpoofTransaction(unsigned, from_=sender)
    computation = state.apply_transaction(spoofed)  # type: ignore[arg-type]
    gas_used = CancunVM.finalize_gas_used(spoofed, computation)  # type: ignore[arg-type]
    return _Applied(computation.is_success, gas_used, bytes(computation.output))


def _balance_of(state: CancunState, token: str, owner: str, env: BlockEnvSpec) -> int:
    snapshot = state.snapshot()
    try:
        view = TxSpec(VIEW_CALLER, token, encode_balance_of(owner), 0, 200_000)
        applied = _apply(state, view, env.base_fee, env.chain_id)
        if not applied.success:
            raise RuntimeError(f"balanceOf reverted on {token}")
        return int(decode(["uint256"], applied.output)[0])
    finally:
        state.revert(snapshot)


def run_reference(
    prestate: Prestate,
    env: BlockEnvSpec,
    tx: TxSpec,
    profit_token: str,
    beneficiary: str,
    victim: TxSpec | None = None,
) -> SimResult:
    """[victim,] tx on py-evm as separate transactions of one block; same measures as
    engine.run_bundle (profit = beneficiary's balance delta of the profit token)."""
    state = pyevm_state(prestate, env)
    if victim is not None:
        applied = _apply(state, victim, env.base_fee, env.chain_id)
        if not applied.success:
            return SimResult(False, 0, 0, decode_revert(applied.output), victim_failed=True)
        state.lock_changes()  # a new transaction: cold accesses, new original values (as a VM)
    before = _balance_of(state, profit_token, beneficiary, env)
    applied = _apply(state, tx, env.base_fee, env.chain_id)
    if not applied.success:
        return SimResult(False, applied.gas_used, 0, decode_revert(applied.output))
    after = _balance_of(state, profit_token, beneficiary, env)
    return SimResult(True, applied.gas_used, after - before)


def agree(a: SimResult, b: SimResult, gas_slack: int = 0) -> bool:
    """`a` (pyrevm) and `b` (py-evm) agree: same outcome and profit, and the same gas, or with
    `gas_slack` (a backrun pyrevm ran in one journal with its victim, which leaves some slots
    warm: decision's budget adds the slack, so b's gas may exceed a's by at most that)."""
    same = (a.success, a.profit) == (b.success, b.profit)
    return same and 0 <= b.gas_used - a.gas_used <= gas_slack
