"""The pools detect trades on: exact reserves, kept block by block from `Sync` logs, rewindable.

Pure: state changes only through `apply_block`, which reads the block's logs in log order
(`PairCreated` of a known factory adds a pool; `Sync` sets a known pool's reserves) and keeps a
journal of previous values per block, so a reorg rewinds exactly to the fork point. Uniswap V3
pools live beside them in a V3Book (amm/v3_book.py: `Swap`/`Mint`/`Burn`/`Initialize`, the same
journal), applied and rewound in the same call, so one block moves both or neither. Deny-listed
tokens and pools are never added.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from eth_utils import keccak, to_checksum_address
from mev_common.amm import v3_book
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_book import V3Book
from mev_common.messages import Block, Log

SYNC_TOPIC = "0x" + keccak(text="Sync(uint112,uint112)").hex()
PAIR_CREATED_TOPIC = "0x" + keccak(text="PairCreated(address,address,address,uint256)").hex()


class PairView(Mapping[tuple[str, str], V2Pool]):
    """One DEX's pairs by `pair_key`, read through to the live pools: what a pending swap's
    path looks up, without copying every pair per trigger."""

    __slots__ = ("_addresses", "_pools")

    def __init__(self, addresses: Mapping[tuple[str, str], str], pools: Mapping[str, V2Pool]):
        self._addresses, self._pools = addresses, pools

    def __getitem__(self, key: tuple[str, str]) -> V2Pool:
        return self._pools[self._addresses[key]]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._addresses)

    def __len__(self) -> int:
        return len(self._addresses)


class RewindTooDeep(Exception):
    """The reorg goes below what the journal remembers: reload state from the chain."""


def _word(data: str, index: int) -> int:
    start = 2 + 64 * index
    return int(data[start : start + 64], 16)


def _topic_address(topic: str) -> str:
    return to_checksum_address("0x" + topic[-40:])


@dataclass
class PoolRegistry:
    """Pools by address, the DEX of each, the factories we follow, and an undo journal."""

    factories: dict[str, tuple[str, int]]  # factory address -> (dex name, fee_bps)
    deny_tokens: frozenset[str] = frozenset()
    deny_pools: frozenset[str] = frozenset()
    journal_depth: int = 64
    pools: dict[str, V2Pool] = field(default_factory=dict)
    dex_of: dict[str, str] = field(default_factory=dict)
    block_number: int = 0
    block_hash: str = ""
    skipped_logs: int = 0
    v3: V3Book = field(default_factory=V3Book)
    _journal: dict[int, list[tuple[str, V2Pool | None]]] = field(default_factory=dict)

    @property
    def all_pools(self) -> ChainMap[str, V2Pool | V3Pool]:
        """V2 and V3 pools by address, one view (what the cycle search reads)."""
        return self.over({})

    def over(self, changed: dict[str, V2Pool]) -> ChainMap[str, V2Pool | V3Pool]:
        """All pools, with `changed` (a pending swap's post-state) in front."""
        return ChainMap(changed, self.pools, self.v3.pools)  # type: ignore[arg-type]

    def allowed(self, pool: V2Pool | V3Pool) -> bool:
        return (
            pool.address not in self.deny_pools
            and pool.token0 not in self.deny_tokens
            and pool.token1 not in self.deny_tokens
        )

    def load(
        self,
        pools: Iterable[tuple[V2Pool, str]],
        block_number: int,
        block_hash: str,
        v3_pools: Iterable[V3Pool] = (),
    ) -> None:
        """Replace everything with a snapshot read from the chain at `block_number`."""
        self.v3.load((p for p in v3_pools if self.allowed(p)), block_number, block_hash)
        self.pools = {}
        self.dex_of = {}
        self._journal = {}
        for pool, dex in pools:
            if self.allowed(pool):
                self.pools[pool.address] = pool
                self.dex_of[pool.address] = dex
        self.block_number = block_number
        self.block_hash = block_hash

    def apply_block(self, block: Block) -> set[str]:
        """Apply a block's logs; return the addresses of pools whose reserves changed."""
        skipped = self.v3.skipped_logs
        try:  # first: a V3 rewind too deep raises before the V2 pools moved
            changed_v3 = self.v3.apply_block(block)
        except v3_book.RewindTooDeep as exc:
            raise RewindTooDeep(str(exc)) from exc
        self.skipped_logs += self.v3.skipped_logs - skipped
        if block.reorg:
            self.rewind(block.number, v3=False)
        undo = self._journal.setdefault(block.number, [])
        changed: set[str] = changed_v3
        # a message spanning several blocks may start inside the snapshot: skip what it holds
        for log in block.logs if block.reorg else block.logs_after(self.block_number):
            address = self._apply_log(log, undo)
            if address:
                changed.add(address)
        self.block_number = block.number
        self.block_hash = block.hash
        for old in [n for n in self._journal if n <= block.number - self.journal_depth]:
            del self._journal[old]
        return changed

    def _apply_log(self, log: Log, undo: list[tuple[str, V2Pool | None]]) -> str | None:
        topic = log.topics[0] if log.topics else ""
        if topic == SYNC_TOPIC:
            pool = self.pools.get(log.address)
            if pool is None:
                return None
            if len(log.data) != 2 + 128:  # a Sync that is not two words: not a V2 pair's
                self.skipped_logs += 1
                return None
            undo.append((pool.address, pool))
            self.pools[pool.address] = pool._replace(
                reserve0=_word(log.data, 0), reserve1=_word(log.data, 1)
            )
            return pool.address
        if topic == PAIR_CREATED_TOPIC and log.address in self.factories:
            if len(log.topics) != 3 or len(log.data) != 2 + 128:
                self.skipped_logs += 1
                return None
            dex, fee_bps = self.factories[log.address]
            pair = to_checksum_address("0x" + log.data[2 + 24 : 2 + 64])
            token0, token1 = _topic_address(log.topics[1]), _topic_address(log.topics[2])
            pool = V2Pool(pair, token0, token1, 0, 0, fee_bps)
            if pair not in self.pools and self.allowed(pool):
                undo.append((pair, None))
                self.pools[pair] = pool
                self.dex_of[pair] = dex
                return pair
        return None

    def rewind(self, to_number: int, v3: bool = True) -> set[str]:
        """Undo every block >= `to_number`; return the pools that changed back."""
        if to_number > self.block_number:
            return set()
        if not self._journal or min(self._journal) > to_number:
            raise RewindTooDeep(
                f"cannot rewind to block {to_number}: the journal starts at "
                f"{min(self._journal) if self._journal else self.block_number + 1}"
            )
        touched: set[str] = set()
        if v3:
            try:
                touched = self.v3.rewind(to_number)
            except v3_book.RewindTooDeep as exc:
                raise RewindTooDeep(str(exc)) from exc
        stale = sorted((n for n in self._journal if n >= to_number), reverse=True)
        for number in stale:
            for address, previous in reversed(self._journal.pop(number)):
                touched.add(address)
                if previous is None:
                    self.pools.pop(address, None)
                    self.dex_of.pop(address, None)
                else:
                    self.pools[address] = previous
        return touched


def after_snapshot(blocks: list[Block], number: int, block_hash: str) -> list[Block]:
    """The blocks buffered while a snapshot was read at (`number`, `block_hash`) that it does
    not already hold: those from the snapshot's own block on, when the stream has it (all of
    them otherwise). What came before that block in the stream led to it, so the snapshot holds
    it: a restarted ingest on a new chain announces a reorg far below the deployed pools, then
    every block up to them, and replaying that reorg would rewind past what V3 can (a reload,
    seconds at start)."""
    for i in range(len(blocks) - 1, -1, -1):
        if blocks[i].number == number and blocks[i].hash == block_hash:
            return blocks[i:]
    return blocks
