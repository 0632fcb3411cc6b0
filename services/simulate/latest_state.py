"""The warm EVM's state from `latest` reads only (HyperEVM), never mixed across blocks.

HyperEVM's RPC serves state at `latest` only, so pyrevm cannot fork at a block (its lazy reads
name the block) and has no prestateTracer to trace what a trade reads. Here the warm EVM is a
plain in-memory pyrevm EVM (no fork URL: it never reads the chain on its own) and:
- what a pool's trades read is found by running the prefetch probe calls (prefetch.PoolProbe)
  on a throwaway EVM with pyrevm's EIP-3155 tracer, from the values known so far: every SLOAD,
  SSTORE, call target and BALANCE/EXTCODE* address; unknown keys are read and the probes run
  again until they read nothing new (values of different blocks are fine for finding keys);
- the keys are then read once more in one checked batch (mev_common.chain.latest) that names
  its block B, with the pool logs since the warm EVM's head in the same batch: the warm EVM is
  patched up to B from those logs, then loaded, cold (warm.WarmEvm.load). A batch a block
  landed in is asked again; a B behind the warm EVM is asked again; a B with another hash at
  the warm EVM's height is a refork. Nothing is loaded from any other block than the head;
- a refork (reorg, gap, a patch that cannot be exact) empties the EVM: every known key is read
  again in one checked batch and loaded into a fresh EVM at that batch's block (`reload`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

from mev_common.chain.block_logs import logs_in_range
from mev_common.chain.latest import BatchCall, LatestRead, read_at_latest
from mev_common.messages import block_from_rpc
from pyrevm import EVM, AccountInfo

from services.simulate.engine import SPEC, BlockEnvSpec, TxSpec
from services.simulate.pair_state import SWAP_TOPIC, SYNC_TOPIC
from services.simulate.prefetch import PoolProbe, balance_slot_in
from services.simulate.reference import AccountState, Prestate
from services.simulate.warm import WarmEvm

log = logging.getLogger("mev.simulate.latest")
MAX_ROUNDS = 16
FIRST_ADDRESS = 1 << 16  # below: precompiles and the view caller, never read from the chain
CALLS = {0xF1: True, 0xF2: False, 0xF4: False, 0xFA: True}  # op -> runs in the callee's storage
ACCOUNT_OPS = {0x31, 0x3B, 0x3C, 0x3F}  # BALANCE, EXTCODESIZE, EXTCODECOPY, EXTCODEHASH
Slot = tuple[str, int]


class StateMoved(Exception):
    """The chain or the warm EVM moved in a way a load cannot follow (a refork follows)."""


def _address(word: str) -> str | None:
    value = int(word, 16) & ((1 << 160) - 1)
    return None if value < FIRST_ADDRESS else "0x" + value.to_bytes(20, "big").hex()


def keys_from_trace(lines: Iterable[str], to: str) -> tuple[set[str], set[Slot]]:
    """Accounts and storage slots one traced call (to `to`) reads or writes, from pyrevm's
    EIP-3155 lines: storage belongs to the frame's storage address (DELEGATECALL and CALLCODE
    keep the caller's), which follows the calls by depth."""
    accounts: set[str] = {to.lower()}
    slots: set[Slot] = set()
    frames = [to.lower()]
    pending = to.lower()
    for line in lines:
        if not line.startswith("{"):
            continue
        step = json.loads(line)
        depth, op, stack = step.get("depth"), step.get("op"), step.get("stack") or []
        if depth is None or op is None:
            continue
        while len(frames) < depth:
            frames.append(pending)
        del frames[depth:]
        here = frames[-1]
        if op in (0x54, 0x55) and stack:  # SLOAD, SSTORE
            slots.add((here, int(stack[-1], 16)))
        elif op in ACCOUNT_OPS and stack:
            if (found := _address(stack[-1])) is not None:
                accounts.add(found)
        elif op in CALLS and len(stack) >= 2:
            target = _address(stack[-2])
            if target is not None:
                accounts.add(target)
            pending = (target or here) if CALLS[op] else here
    return accounts, slots


def traced(evm: EVM, tx: TxSpec) -> list[str]:
    """`tx` on a tracing EVM; the trace lines (pyrevm prints them to file descriptor 1, so
    that is pointed at a temporary file meanwhile; nothing else runs on this thread)."""
    sys.stdout.flush()
    with tempfile.TemporaryFile(mode="w+") as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            checkpoint = evm.snapshot()
            try:
                evm.message_call(tx.sender, tx.to, tx.data, value=tx.value, gas=tx.gas)
            except RuntimeError:
                pass  # a probe may revert: what it read before is what we want
            finally:
                evm.revert(checkpoint)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return sink.read().splitlines()


def discovery_evm(state: Prestate, env: BlockEnvSpec) -> EVM:
    evm = EVM(env=env.pyrevm_env(), spec_id=SPEC, tracing=True)
    insert(evm, state)
    return evm


def insert(evm: EVM, state: Prestate) -> None:
    for address, acct in state.items():
        evm.insert_account_info(
            address,
            AccountInfo(acct.balance, acct.nonce, code=acct.code or None),  # type: ignore[arg-type]
        )
    for address, acct in state.items():
        for slot, value in acct.storage.items():
            checkpoint = evm.snapshot()
            evm.insert_account_storage(address, slot, value)
            evm.revert(checkpoint)


def read_calls(
    accounts: Iterable[str], slots: Iterable[Slot], with_code: bool = True
) -> list[tuple[str, list[Any]]]:
    calls: list[tuple[str, list[Any]]] = []
    for address in sorted(accounts):
        calls += [
            ("eth_getBalance", [address, "latest"]),
            ("eth_getTransactionCount", [address, "latest"]),
        ]
        if with_code:
            calls.append(("eth_getCode", [address, "latest"]))
    for address, slot in sorted(slots):
        calls.append(("eth_getStorageAt", [address, hex(slot), "latest"]))
    return calls


def state_from(
    accounts: list[str], slots: list[Slot], results: list[Any], code: dict[str, bytes] | None
) -> Prestate:
    """The replies of `read_calls` (same order) as a Prestate; `code` when it was not read."""
    for result in results:
        if isinstance(result, Exception):
            raise result
    out: Prestate = {}
    i = 0
    for address in sorted(accounts):
        balance, nonce = int(results[i], 16), int(results[i + 1], 16)
        i += 2
        if code is None:
            raw = bytes.fromhex(str(results[i]).removeprefix("0x"))
            i += 1
        else:
            raw = code.get(address, b"")
        out[address] = AccountState(balance, nonce, raw)
    for address, slot in sorted(slots):
        out.setdefault(address, AccountState()).storage[slot] = int(results[i], 16)
        i += 1
    return out


def merge(into: Prestate, more: Prestate) -> None:
    for address, acct in more.items():
        have = into.setdefault(address, AccountState())
        have.balance, have.nonce = acct.balance, acct.nonce
        have.code = acct.code or have.code
        have.storage.update(acct.storage)


def known_keys(state: Prestate) -> tuple[set[str], set[Slot]]:
    accounts = {a for a, acct in state.items() if acct.code or acct.balance or acct.nonce}
    accounts |= set(state)
    return accounts, {(a, s) for a, acct in state.items() for s in acct.storage}


async def discover(
    read_batch: BatchCall, warm: WarmEvm, probes: list[PoolProbe], bot: str
) -> list[str]:
    """Find what `probes`' trades read, load it at the warm EVM's head; the pairs loaded."""
    env = warm.env
    assert env is not None
    calls = [c for p in probes for c in p.calls(warm.executor, bot)]
    scratch: Prestate = {a: _copy(acct) for a, acct in warm.latest_state.items()}
    for _ in range(MAX_ROUNDS):
        evm = discovery_evm(scratch, env)
        accounts, slots = set(), set()
        for tx in calls:
            found = keys_from_trace(traced(evm, tx), tx.to)
            accounts |= found[0] | {tx.sender.lower()}
            slots |= found[1]
        have_accounts, have_slots = known_keys(scratch)
        new_accounts = sorted(accounts - have_accounts)
        new_slots = sorted(slots - have_slots)
        if not new_accounts and not new_slots:
            break
        read = await read_at_latest(read_batch, read_calls(new_accounts, new_slots))
        merge(scratch, state_from(new_accounts, new_slots, read.results, None))
    accounts, slots = known_keys(scratch)
    code = {a: scratch[a].code for a in scratch}
    await load_checked(read_batch, warm, sorted(accounts), sorted(slots), code)
    loaded = []
    for probe in probes:
        slot0 = balance_slot_in(warm.latest_state, probe.token0, [probe.pair, warm.executor])
        slot1 = balance_slot_in(warm.latest_state, probe.token1, [probe.pair, warm.executor])
        if slot0 is None or slot1 is None:
            log.warning("balance slot not found", extra={"fields": {"pair": probe.pair}})
            continue
        warm.balance_slots.setdefault(probe.token0, slot0)
        warm.balance_slots.setdefault(probe.token1, slot1)
        warm.pair_tokens[probe.pair] = (probe.token0, probe.token1)
        loaded.append(probe.pair)
    warm.prefetched_pairs += len(loaded)
    return loaded


async def load_checked(
    read_batch: BatchCall,
    warm: WarmEvm,
    accounts: list[str],
    slots: list[Slot],
    code: dict[str, bytes],
    tries: int = 4,
) -> int:
    """Read `accounts` (balance, nonce) and `slots` at latest in one checked batch with the
    pool logs since the warm head; bring the warm EVM to that block and load them. Returns
    the block loaded at."""
    for _ in range(tries):
        head = warm.head
        assert head is not None
        logs = (
            "eth_getLogs",
            [{"fromBlock": hex(head.number + 1), "toBlock": "latest",
              "topics": [[SYNC_TOPIC, SWAP_TOPIC]]}],
        )  # fmt: skip
        read = await read_at_latest(read_batch, [logs, *read_calls(accounts, slots, False)])
        if not _catch_up(warm, read):
            continue
        state = state_from(accounts, slots, read.results[1:], code)
        if warm.head is None or not warm.load(warm.head, state, {}, {}):
            continue
        merge(warm.latest_state, state)
        return read.number
    raise StateMoved(f"no consistent read in {tries} tries")


def _catch_up(warm: WarmEvm, read: LatestRead) -> bool:
    """Bring the warm EVM to the read's block by the logs in the same batch. False when it is
    past that block already (ask again); StateMoved when it has another block there."""
    head = warm.head
    assert head is not None
    if read.number < head.number:
        return False
    if read.number == head.number:
        if read.hash != head.hash:
            raise StateMoved(f"block {head.number} is {read.hash} on the chain, not {head.hash}")
        return True
    raw_logs = read.results[0]
    if isinstance(raw_logs, Exception):
        raise raw_logs
    block = block_from_rpc(warm.chain_id, read.head).model_copy(
        update={
            "logs": logs_in_range(raw_logs or [], head.number + 1, read.number),
            "logs_from": head.number + 1,
        }
    )
    forks = warm.forks
    warm.advance(block)
    if warm.forks != forks:
        raise StateMoved(f"catching up to {read.number}: {warm.last_refork_reason}")
    return warm.head is not None and warm.head.number == read.number


async def reload(read_batch: BatchCall, warm: WarmEvm) -> int:
    """After a refork: every known key read again in one checked batch, into a fresh EVM at
    that batch's block. Returns the block."""
    state = warm.latest_state
    accounts, slots = sorted(state), sorted(known_keys(state)[1])
    for _ in range(4):
        read = await read_at_latest(read_batch, read_calls(accounts, slots, False))
        code = {a: acct.code for a, acct in state.items()}
        fresh = state_from(accounts, slots, read.results, code)
        warm.fork(block_from_rpc(warm.chain_id, read.head), "reload at latest")
        warm.reload_needed = False
        if warm.head is not None and warm.load(warm.head, fresh, {}, {}):
            warm.latest_state = fresh
            return read.number
    raise StateMoved("reload: no consistent read")


def _copy(acct: AccountState) -> AccountState:
    return AccountState(acct.balance, acct.nonce, acct.code, dict(acct.storage))
