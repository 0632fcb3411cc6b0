"""A pyrevm EVM forked once and kept at the head by patching, so the hot path makes no RPC.

pyrevm caches what it fetched from the fork block and never refreshes it. Each new block we
rewrite, for every pair with a `Sync` log, the storage `_update` wrote (pair_state) and the
pair's two token balances (equal to the reserves right after a Sync), and the block env
(number, timestamp, base fee). Values never fetched yet still come lazily from the fork block,
which is correct: every patch since the fork was applied on top of exactly those values.

Patches go into the fork's database, not pyrevm's journal (write_cold), so every patched
account and slot stays cold: the next call pays EIP-2929's cold prices (2,600 an account,
2,100 a slot) exactly as the chain does, and gas equals a fresh fork's to the unit. A pair's
first `_update` in the new block (the cumulative-price writes when its blockTimestampLast is
older than the block) runs for real against the patched slots and the next block's timestamp.

Our executor's own trades move its token balances: those come from the trade's Swap logs
(pair_state.executor_deltas). We refork (cheap: state is fetched lazily) only when patching
cannot be exact: a reorg, a gap in the block stream, a pair we cannot read, a token whose
balance slot we could not find.

Uniswap V3 pool storage (price, liquidity, fee growth, crossed ticks, oracle) is not rebuilt
from logs: a block with V3 pool events (pair_state.V3_POOL_TOPICS) leaves those pools (and our
executor, when it traded through one) `pending` until the node's diff of that block
(block_diff.py, one debug_traceBlockByNumber off the hot path: diff_feed.py) is applied, cold,
by `apply_diff`. Only simulations through a pending pool wait for it; V2 routes never do. A
diff that comes in after a newer block never sets a slot (or a created account) back: what that
block's logs patched and what a trace at a later head loaded (`load`) keep their newer values
(`synced`, `accounts_at`), or a victim would run on a state the chain no longer has. Where
the RPC has no such trace (`diffs` off: latest-only RPCs, HyperEVM) a changed pool is marked
dirty instead, and a simulation through it reforks first (`refresh`), as does our own V3 trade.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from mev_common.messages import Block, Log
from pyrevm import EVM, AccountInfo

from services.simulate.block_diff import BlockDiff
from services.simulate.effects import VictimEffects
from services.simulate.engine import (
    SPEC,
    BlockEnvSpec,
    NeedsRefork,
    TxSpec,
    block_env_after,
    read_slots,
    read_slots_at,
    write_cold,
)
from services.simulate.known_code import CodeHashes
from services.simulate.pair_state import (
    SLOT_PRICE0,
    SLOT_PRICE1,
    SLOT_RESERVES,
    SWAP_TOPIC,
    SYNC_TOPIC,
    V3_POOL_TOPICS,
    V3_SWAP_TOPIC,
    BalanceSlot,
    PairSlots,
    apply_sync,
    decode_sync,
    executor_deltas,
)
from services.simulate.reference import Prestate
from services.simulate.warm_slots import StateSlots

log = logging.getLogger("mev.simulate.warm")


@dataclass
class WarmEvm(StateSlots):
    fork_url: str | None  # None: no fork, state only from latest reads (latest_state.py)
    chain_id: int
    executor: str
    block_time_s: float = 1.0
    evm: EVM | None = None
    head: Block | None = None
    env: BlockEnvSpec | None = None
    forks: int = 0
    patched_blocks: int = 0
    patched_pairs: int = 0
    executor_trades: int = 0  # blocks where our own trade was patched in
    prefetched_pairs: int = 0
    last_refork_reason: str = ""
    balance_slots: dict[str, BalanceSlot | None] = field(default_factory=dict)
    # what is known of pairs' tokens (never changes: a refork keeps it), not what the EVM holds
    pair_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    # pools whose prefetch this EVM's database holds (`load`): a refork empties it
    loaded: set[str] = field(default_factory=set)
    on_fork: Callable[[], None] | None = None  # after each refork (prefetch_queue.py)
    dirty_v3: set[str] = field(default_factory=set)  # lower-case: V3 pools changed since the fork
    diffs: bool = True  # the RPC gives block diffs (else V3 pools changed since the fork reforks)
    # block number -> lower-case addresses whose state after it awaits its diff
    pending: dict[int, set[str]] = field(default_factory=dict)
    # (lower-case address, slot) -> the block whose state its last write holds (a patch from
    # that block's logs, or a trace at that head: `load`): an older block's diff skips it.
    # Kept only while a diff is pending (no older diff can come after: see `_settled`)
    synced: dict[tuple[str, int], int] = field(default_factory=dict)
    # lower-case address -> the head its balance, nonce and code were loaded at (`load`): an
    # older diff's created account does not replace them
    accounts_at: dict[str, int] = field(default_factory=dict)
    diffs_applied: int = 0
    diff_kept: int = 0  # slots an older diff would have set back to another (stale) value
    # without a fork URL: every account and slot loaded (values as of the last load), and
    # whether a refork emptied the EVM so they must be read again (latest_state.reload)
    latest_state: Prestate = field(default_factory=dict)
    reload_needed: bool = False
    # every (address, slot) a victim traced at this head touches (prefetch.prefetch_victim):
    # carried over cold behind it (`carried_by`), for any route behind it (effects.py)
    touched: dict[TxSpec, list[tuple[str, int]]] = field(default_factory=dict)
    effects: VictimEffects = field(default_factory=VictimEffects)  # victims run at this head
    codes: CodeHashes = field(default_factory=CodeHashes)  # code this EVM holds (known_code.py)

    def fork(self, block: Block, reason: str = "start") -> None:
        """A fresh EVM at `block` (state fetched lazily from the RPC at that block)."""
        env = block_env_after(block, self.chain_id, self.block_time_s)
        if self.fork_url is None:  # latest reads only: an empty EVM, loaded again by reload()
            self.evm = EVM(spec_id=SPEC, env=env.pyrevm_env())
            self.reload_needed = bool(self.latest_state)
        else:
            self.evm = EVM(
                fork_url=self.fork_url,
                fork_block=hex(block.number),
                spec_id=SPEC,
                env=env.pyrevm_env(),
            )
        self.head, self.env = block, env
        self.touched.clear()
        self.effects.clear()
        self.codes = CodeHashes()  # the new EVM's database holds none of the old one's code
        self.loaded.clear()  # nor any pool's prefetched state
        self.dirty_v3.clear()
        self.pending.clear()
        self._settled()
        self.forks += 1
        self.last_refork_reason = reason
        log.info("forked", extra={"fields": {"block": block.number, "reason": reason}})
        if self.on_fork is not None:
            self.on_fork()

    def advance(self, block: Block) -> None:
        """Bring the EVM to `block`: patch if exact, else refork. Older blocks are ignored."""
        head = self.head
        if self.evm is None or head is None:
            self.fork(block)
            return
        if block.reorg:
            self.fork(block, "reorg")
            return
        if block.number <= head.number:
            return
        # a message may span several blocks (Block.logs_from): it must start right after ours
        first = block.first_number
        linked = first < block.number or block.parent_hash == head.hash
        if first > head.number + 1 or not linked:
            self.fork(block, f"gap {head.number} -> {block.number}")
            return
        try:
            self.patch(block)
        except NeedsRefork as exc:
            self.fork(block, str(exc))

    def patch(self, block: Block) -> None:
        evm = self.evm
        assert evm is not None
        syncs: dict[str, list[tuple[int, int]]] = defaultdict(list)
        dirty: set[str] = set()
        me = self.executor.lower()[2:]
        head = self.head
        assert head is not None
        # a message spanning several blocks (latest-only polling): only blocks after the head
        logs = sorted(
            block.logs_after(head.number), key=lambda e: (e.block_number or 0, e.log_index)
        )
        exact = self.diffs and self.fork_url is not None  # V3 changes come from block diffs
        waiting: dict[int, set[str]] = defaultdict(set)
        for entry in logs:
            if entry.topics and entry.topics[0] in V3_POOL_TOPICS:
                number = entry.block_number or block.number
                if entry.topics[0] == V3_SWAP_TOPIC and entry.topics[1].lower().endswith(me):
                    if not exact:
                        raise NeedsRefork(f"our executor traded through V3 pool {entry.address}")
                    waiting[number].add(self.executor.lower())
                (waiting[number] if exact else dirty).add(entry.address.lower())
            if self.fork_url is None and entry.address not in self.pair_tokens:
                continue  # not loaded: discovery reads it whole, at the head, when it is
            if entry.topics and entry.topics[0] == SYNC_TOPIC:
                try:
                    syncs[entry.address].append(decode_sync(entry.data))
                except ValueError as exc:
                    raise NeedsRefork(f"bad Sync log: {exc}") from exc
        writes: list[tuple[str, int, int]] = []
        for pair, updates in syncs.items():
            token0, token1 = self.tokens_of(pair)
            words = read_slots(evm, pair, SLOT_RESERVES, SLOT_PRICE0, SLOT_PRICE1)
            slots = PairSlots.from_words(*words)
            for r0, r1 in updates:
                slots = apply_sync(slots, r0, r1, block.timestamp)
            writes += [
                (pair, SLOT_RESERVES, slots.packed()),
                (pair, SLOT_PRICE0, slots.price0_cumulative),
                (pair, SLOT_PRICE1, slots.price1_cumulative),
                (token0, self.balance_slot(token0).slot(pair), slots.reserve0),
                (token1, self.balance_slot(token1).slot(pair), slots.reserve1),
            ]
        mine = self.executor.lower()
        if any(mine in a for a in (*self.pending.values(), *waiting.values())):
            # a diff gives our balances (a V3 trade of ours): a later V2 trade of ours waits too
            if any(_swap_of(entry, me) for entry in logs):
                waiting[block.number].add(mine)
        else:
            writes += self.executor_writes(logs)
        # all reads and checks done: now write, so a refork never follows a half patch
        write_cold(evm, writes)
        env = block_env_after(block, self.chain_id, self.block_time_s)
        evm.set_block_env(env.pyrevm_block())
        self.head, self.env = block, env
        self.touched.clear()
        self.effects.clear()
        self.dirty_v3 |= dirty
        for number, addresses in waiting.items():
            self.pending.setdefault(number, set()).update(addresses)
        self._held_at(block.number, [(address, slot) for address, slot, _ in writes])
        self.patched_blocks += 1
        self.patched_pairs += len(syncs)

    def refresh(self, pools: list[str]) -> None:
        """Refork at the head when a simulation is about to read a V3 pool that changed since
        the fork and cannot be patched (no block diffs), or whose diff did not come in time."""
        if self.head is None:
            return
        changed = next((p for p in pools if p.lower() in self.dirty_v3), None)
        if changed is not None:
            self.fork(self.head, f"V3 pool {changed} changed")
        elif self.waits(pools):
            self.fork(self.head, "block diff not applied in time")

    def waits(self, pools: list[str]) -> bool:
        """Whether a trade through `pools` must wait for a block diff: one of them, or our
        executor (every trade reads its balances), changed in a block whose diff is pending."""
        if not self.pending:
            return False
        wanted = {p.lower() for p in pools} | {self.executor.lower()}
        return any(wanted & addresses for addresses in self.pending.values())

    def apply_diff(self, diff: BlockDiff) -> bool:
        """Write a pending block's storage changes (block_diff.py) cold; the caller applies
        diffs in block order. Slots patched from a later block's logs keep that newer value.
        False when the block is not pending (a refork since: the fork has newer state)."""
        evm = self.evm
        if evm is None or diff.number not in self.pending:
            return False
        live = {address.lower() for address in evm.journal_state}
        for address, acct in diff.created.items():
            if address not in live and self.accounts_at.get(address, -1) <= diff.number:
                evm.insert_account_info(
                    address, AccountInfo(acct.balance, acct.nonce, code=acct.code)
                )
        synced, writes, kept = self.synced, [], []
        for (address, slot), value in diff.writes.items():
            if synced.get((address, slot), -1) <= diff.number:
                writes.append((address, slot, value))
            else:
                kept.append(((address, slot), value))
        if kept:
            now = read_slots_at(evm, [key for key, _ in kept])
            self.diff_kept += sum(old != new for (_, old), new in zip(kept, now, strict=True))
        try:
            write_cold(evm, writes)
        except NeedsRefork as exc:
            assert self.head is not None
            self.fork(self.head, str(exc))
            return False
        del self.pending[diff.number]
        self.diffs_applied += 1
        if not self.pending:
            self._settled()
        return True

    def diff_failed(self, number: int, unsupported: bool) -> None:
        """No diff for a pending block: its pools become dirty (a simulation through one
        reforks), and our executor's V3 trade reforks now. `unsupported`: stop asking."""
        addresses = self.pending.pop(number, set())
        if not self.pending:
            self._settled()
        self.diffs = self.diffs and not unsupported
        me = self.executor.lower()
        self.dirty_v3 |= addresses - {me}
        if me in addresses and self.head is not None:
            self.fork(self.head, f"our executor traded through V3: no diff of block {number}")

    def load(
        self,
        at: Block,
        prestate: Prestate,
        pair_tokens: dict[str, tuple[str, str]],
        balance_slots: dict[str, BalanceSlot],
    ) -> bool:
        """Put state traced at block `at` (prefetch.py) into the fork's database, cold, and
        remember the pairs' tokens and the tokens' balance mappings. Only while the EVM is
        still at `at` (values of another block would be wrong): False when it moved on. What
        it wrote holds `at`'s state: a pending older block's diff applied later keeps it."""
        evm = self.evm
        if evm is None or self.head is not at:
            return False
        live = {address.lower() for address in evm.journal_state}
        held = self.pending and min(self.pending) < at.number  # an older diff may follow
        for address, acct in prestate.items():
            if address.lower() in live:
                continue  # the coinbase: revm keeps it loaded (and warm, as the chain does)
            info = self.codes.info(evm, address, acct.balance, acct.nonce, acct.code)
            evm.insert_account_info(address, info)
            self.codes.inserted(address, info, acct.code)
            write_cold(evm, [(address, slot, value) for slot, value in acct.storage.items()])
            if held:
                self.accounts_at[address.lower()] = at.number
                self._held_at(at.number, [(address, slot) for slot in acct.storage])
        self.pair_tokens.update(pair_tokens)
        self.loaded.update(pair_tokens)
        for token, found in balance_slots.items():
            self.balance_slots.setdefault(token, found)
        self.prefetched_pairs += len(pair_tokens)
        return True

    def _held_at(self, number: int, keys: list[tuple[str, int]]) -> None:
        """`keys` now hold block `number`'s values (see `synced`)."""
        if self.pending:
            self.synced.update(((address.lower(), slot), number) for address, slot in keys)

    def _settled(self) -> None:
        """No diff pending: none can come of a block older than any value written so far (a
        block becomes pending only as the new head), so nothing needs to be kept from one."""
        self.synced.clear()
        self.accounts_at.clear()

    def executor_writes(self, logs: list[Log]) -> list[tuple[str, int, int]]:
        """Our executor's token balances after its own trades in `logs` (from their Swap
        logs: pair_state.executor_deltas), so a landed trade needs no refork."""
        for entry in logs:
            if entry.topics and entry.topics[0] == SWAP_TOPIC:
                if self.fork_url is None and entry.address not in self.pair_tokens:
                    continue
                self.tokens_of(entry.address)
        try:
            deltas = executor_deltas(logs, self.executor, self.pair_tokens)
        except ValueError as exc:
            raise NeedsRefork(f"our executor traded: {exc}") from exc
        assert self.evm is not None
        writes = []
        for token, delta in sorted(deltas.items()):
            slot = self.balance_slot(token).slot(self.executor)
            (balance,) = read_slots(self.evm, token, slot)
            if balance + delta < 0:
                raise NeedsRefork(f"our executor's {token} balance would go negative")
            writes.append((token, slot, balance + delta))
        self.executor_trades += 1 if deltas else 0
        return writes

    def holds(self, pool: str) -> bool:
        """Whether this EVM's database holds `pool`'s prefetched state (without a fork URL: the
        discovered pools, which a refork's reload reads again: latest_state.reload)."""
        return pool in (self.pair_tokens if self.fork_url is None else self.loaded)

    def has_state(self, pools: list[str]) -> bool:
        """Whether a trade through `pools` runs on loaded state (with a fork URL, pyrevm
        fetches what is missing itself; without, only discovered pools are loaded)."""
        if self.fork_url is not None:
            return self.evm is not None
        return (
            self.evm is not None
            and not self.reload_needed
            and all(p in self.pair_tokens for p in pools)
        )


def _swap_of(entry: Log, me: str) -> bool:
    """A V2 Swap sent by or to `me` (an address's last 40 hex digits)."""
    topics = entry.topics
    ends = (topics[1][-40:].lower(), topics[2][-40:].lower()) if len(topics) > 2 else ()
    return bool(topics) and topics[0] == SWAP_TOPIC and me in ends
