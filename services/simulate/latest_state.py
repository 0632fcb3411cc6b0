"""The warm EVM's state from `latest` reads only (HyperEVM), never mixed across blocks.

HyperEVM's RPC serves state at `latest` only, so pyrevm cannot fork at a block (its lazy reads
name the block) and has no prestateTracer to trace what a trade reads. Here the warm EVM is a
plain in-memory pyrevm EVM (no fork URL: it never reads the chain on its own) and:
- what a pool's trades read is found by running the prefetch probe calls (prefetch.PoolProbe)
  on a throwaway EVM forked from a loopback recorder (key_recorder.py) that serves the values
  known so far and records every account and slot asked for, reverted frames included; unknown
  keys are read from the chain and the probes run again until they read nothing new (values of
  different blocks are fine for finding keys; pyrevm's tracer was ~100x too slow for this);
- the keys are then read once more in one checked batch (mev_common.chain.latest) that names
  its block B, with the pool logs since the warm EVM's head in the same batch: the warm EVM is
  patched up to B from those logs, then loaded, cold (warm.WarmEvm.load). A batch a block
  landed in is asked again; a B behind the warm EVM is asked again; a B with another hash at
  the warm EVM's height is a refork. Nothing is loaded from any other block than the head;
- a refork (reorg, gap, a patch that cannot be exact) empties the EVM: every known key is read
  again in one checked batch and loaded into a fresh EVM at that batch's block (`reload`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mev_common.chain.block_logs import logs_in_range
from mev_common.chain.jsonrpc import RpcError
from mev_common.chain.latest import BatchCall, BlockMoved, LatestRead, read_at_latest
from mev_common.chain.rpc_blocks import block_from_rpc
from pyrevm import EVM

from services.simulate.engine import SPEC, BlockEnvSpec, TxSpec, write_cold
from services.simulate.pair_state import SWAP_TOPIC, SYNC_TOPIC
from services.simulate.prefetch import PoolProbe, balance_slot_in
from services.simulate.reference import AccountState, Prestate
from services.simulate.warm import WarmEvm

log = logging.getLogger("mev.simulate.latest")
REPO = Path(__file__).resolve().parents[2]
MAX_ROUNDS = 16
MAX_BATCH = 40  # calls per batch: fits beside ingest's polls under a 100-a-minute limit
RETRY_S = 5.0
LOG_SPAN = 40  # eth_getLogs blocks per query: HyperEVM serves at most 50
FIRST_ADDRESS = 1 << 16  # below: precompiles and the view caller, never read from the chain
Slot = tuple[str, int]


class StateMoved(Exception):
    """The chain or the warm EVM moved in a way a load cannot follow (a refork follows)."""


class Recorder:
    """The key_recorder process (one per simulate process, started on first use)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.simulate.key_recorder"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def rpc(self, method: str, params: list[Any]) -> Any:
        """One call to the loopback recorder (stdlib HTTP: a few ms, off the hot path)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())["result"]

    def put(self, state: Prestate) -> None:
        rows = [
            [a, x.balance, x.nonce, "0x" + x.code.hex(), {str(k): v for k, v in x.storage.items()}]
            for a, x in state.items()
        ]
        self.rpc("recorder_put", rows)

    def take(self) -> tuple[set[str], set[Slot]]:
        accounts, slots = set(), set()
        for key in self.rpc("recorder_take", []):
            if key[0] == "account":
                if int(key[1], 16) >= FIRST_ADDRESS:
                    accounts.add(key[1])
            else:
                slots.add((key[1], int(key[2])))
        return accounts, slots

    def keys_read(self, env: BlockEnvSpec, calls: list[TxSpec]) -> tuple[set[str], set[Slot]]:
        """Every account and slot `calls` read on an EVM forked from the recorder."""
        self.take()
        evm = EVM(fork_url=self.url, fork_block="latest", spec_id=SPEC, env=env.pyrevm_env())
        for tx in calls:
            checkpoint = evm.snapshot()
            try:
                evm.message_call(tx.sender, tx.to, tx.data, value=tx.value, gas=tx.gas)
            except RuntimeError:
                pass  # a probe may revert: what it read before is what we want
            finally:
                evm.revert(checkpoint)
        return self.take()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=5)


_recorder: Recorder | None = None


def recorder() -> Recorder:
    global _recorder
    if _recorder is None or _recorder.proc.poll() is not None:
        _recorder = Recorder()
    return _recorder


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


def merge(into: Prestate, more: Prestate, infos: Iterable[str]) -> None:
    """`more` into `into`: storage of every account, balance/nonce/code only of `infos` (the
    accounts that were read; the others only had slots read)."""
    read = set(infos)
    for address, acct in more.items():
        have = into.setdefault(address, AccountState())
        if address in read:
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
    keys = recorder()
    keys.put(scratch)
    for _ in range(MAX_ROUNDS):
        accounts, slots = keys.keys_read(env, calls)
        have_accounts, have_slots = known_keys(scratch)
        new_accounts = sorted(accounts - have_accounts)
        new_slots = sorted(slots - have_slots)
        if not new_accounts and not new_slots:
            break
        results: list[Any] = []
        for chunk in chunks(read_calls(new_accounts, new_slots), MAX_BATCH):
            results += (await read_patiently(read_batch, chunk)).results
        found = state_from(new_accounts, new_slots, results, None)
        merge(scratch, found, new_accounts)
        keys.put({a: scratch[a] for a in found})  # whole accounts: a slot alone has no code
    code = {a: scratch[a].code for a in scratch}
    loaded = []
    # one checked batch per pool (a batch over the RPC's per-minute limit is never served):
    # each pool is registered as soon as it is loaded, so the next blocks' logs patch it
    for probe in probes:
        accounts, slots = keys.keys_read(env, probe.calls(warm.executor, bot))
        have_accounts, have_slots = known_keys(warm.latest_state)
        await load_checked(
            read_batch, warm, sorted(accounts - have_accounts), sorted(slots - have_slots), code
        )
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


def chunks(calls: list[tuple[str, list[Any]]], size: int) -> list[list[tuple[str, list[Any]]]]:
    return [calls[i : i + size] for i in range(0, len(calls), size)]


async def read_patiently(
    read_batch: BatchCall, calls: list[tuple[str, list[Any]]], tries: int = 20
) -> LatestRead:
    """read_at_latest, waiting out a refused batch (HTTP 429 past the RPC's limit: a refused
    batch costs nothing, so waiting and asking again is how start-up fits the limit)."""
    for attempt in range(tries):
        try:
            return await read_at_latest(read_batch, calls)
        except BlockMoved:
            raise
        except RpcError as exc:
            if attempt == tries - 1:
                raise
            log.info("latest read refused, waiting", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(RETRY_S)
    raise AssertionError("unreachable")


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
            [{"fromBlock": hex(head.number + 1), "toBlock": hex(head.number + LOG_SPAN),
              "topics": [[SYNC_TOPIC, SWAP_TOPIC]]}],
        )  # fmt: skip
        read = await read_patiently(read_batch, [logs, *read_calls(accounts, slots, False)])
        if not _catch_up(warm, read):
            continue
        state = state_from(accounts, slots, read.results[1:], code)
        infos = {a: x for a, x in state.items() if a in set(accounts)}
        writes = [
            (a, k, v) for a, x in state.items() if a not in infos for k, v in x.storage.items()
        ]
        if warm.head is None or not warm.load(warm.head, infos, {}, {}):
            continue
        assert warm.evm is not None
        write_cold(warm.evm, writes)  # slots of accounts loaded before: their info stays
        merge(warm.latest_state, state, accounts)
        return read.number
    raise StateMoved(f"no consistent read in {tries} tries")


def _catch_up(warm: WarmEvm, read: LatestRead) -> bool:
    """Bring the warm EVM to the read's block by the logs in the same batch. False when it is
    past that block already (ask again); StateMoved when it has another block there."""
    head = warm.head
    assert head is not None
    if read.number < head.number:
        return False
    if read.number > head.number + LOG_SPAN:  # the logs asked for do not reach the read
        raise StateMoved(f"warm EVM at {head.number}, {read.number - head.number} blocks behind")
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
        read = await read_patiently(read_batch, read_calls(accounts, slots, False))
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
