"""Uniswap V3 pools kept block by block from their logs, rewindable: the V3 twin of detect's
PoolRegistry (same journal: the previous object of every pool a block changed).

Pure. `Initialize` sets the price of a pool we track; `Swap` carries the pool's sqrtPriceX96,
liquidity and tick after the swap, so it sets them (no math needed, no drift possible); `Mint`
and `Burn` change the tick map and, when the range holds the current tick, the liquidity, exactly
as the pool's _modifyPosition does. A log that does not decode is counted and skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from eth_utils import keccak

from mev_common.amm.v3 import V3Pool
from mev_common.messages import Block, Log


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


V3_SWAP_TOPIC = _topic("Swap(address,address,int256,int256,uint160,uint128,int24)")
V3_MINT_TOPIC = _topic("Mint(address,address,int24,int24,uint128,uint256,uint256)")
V3_BURN_TOPIC = _topic("Burn(address,int24,int24,uint128,uint256,uint256)")
V3_INITIALIZE_TOPIC = _topic("Initialize(uint160,int24)")
V3_LOG_TOPICS = [V3_SWAP_TOPIC, V3_MINT_TOPIC, V3_BURN_TOPIC, V3_INITIALIZE_TOPIC]


class RewindTooDeep(Exception):
    """The reorg goes below what the journal remembers: reload state from the chain."""


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


def _words(data: str) -> list[int]:
    raw = data.removeprefix("0x")
    return [int(raw[i : i + 64], 16) for i in range(0, len(raw), 64)]


@dataclass
class V3Book:
    """V3 pools by address and an undo journal per block."""

    journal_depth: int = 64
    pools: dict[str, V3Pool] = field(default_factory=dict)
    block_number: int = 0
    block_hash: str = ""
    skipped_logs: int = 0
    _journal: dict[int, list[tuple[str, V3Pool]]] = field(default_factory=dict)

    def load(self, pools: Iterable[V3Pool], block_number: int, block_hash: str) -> None:
        """Replace everything with a snapshot read from the chain at `block_number`."""
        self.pools = {p.address: p for p in pools}
        self._journal = {}
        self.block_number, self.block_hash = block_number, block_hash

    def apply_block(self, block: Block) -> set[str]:
        """Apply a block's logs (rewinding first on a reorg); return the pools that changed."""
        if block.reorg:
            self.rewind(block.number)
        undo = self._journal.setdefault(block.number, [])
        changed = set()
        for log in block.logs:
            pool = self.pools.get(log.address)
            if pool is None or not log.topics:
                continue
            try:
                after = apply_log(pool, log)
            except (ValueError, IndexError, ArithmeticError):
                self.skipped_logs += 1
                continue
            if after is not pool:
                undo.append((pool.address, pool))
                self.pools[pool.address] = after
                changed.add(pool.address)
        self.block_number, self.block_hash = block.number, block.hash
        for old in [n for n in self._journal if n <= block.number - self.journal_depth]:
            del self._journal[old]
        return changed

    def rewind(self, to_number: int) -> set[str]:
        """Undo every block >= `to_number`; return the pools that changed back."""
        if to_number > self.block_number:
            return set()
        if not self._journal or min(self._journal) > to_number:
            raise RewindTooDeep(f"cannot rewind V3 pools to block {to_number}")
        touched = set()
        for number in sorted((n for n in self._journal if n >= to_number), reverse=True):
            for address, previous in reversed(self._journal.pop(number)):
                self.pools[address] = previous
                touched.add(address)
        self.block_number = to_number - 1
        return touched


def apply_log(pool: V3Pool, log: Log) -> V3Pool:
    """The pool after one of its logs (raises ValueError/IndexError on a malformed one)."""
    topic = log.topics[0]
    if topic == V3_SWAP_TOPIC:
        _, _, sqrt_price, liquidity, tick = _words(log.data)
        return pool.after_swap(sqrt_price, _signed(tick, 256), liquidity)
    if topic in (V3_MINT_TOPIC, V3_BURN_TOPIC):
        if len(log.topics) != 4:
            raise ValueError("Mint/Burn without its three indexed fields")
        lower, upper = _signed(int(log.topics[2], 16), 256), _signed(int(log.topics[3], 16), 256)
        words = _words(log.data)
        amount = words[1] if topic == V3_MINT_TOPIC else words[0]  # Mint's first word: sender
        return pool.modify_position(lower, upper, amount if topic == V3_MINT_TOPIC else -amount)
    if topic == V3_INITIALIZE_TOPIC:
        sqrt_price, tick = _words(log.data)
        return pool.after_swap(sqrt_price, _signed(tick, 256), pool.liquidity)
    return pool
