"""Uniswap V2 pair storage, rebuilt from `Sync` logs, so the warm EVM needs no RPC per block.

A pair's `_update` writes three things we patch: slot 8 (reserve0 | reserve1<<112 |
blockTimestampLast<<224), the cumulative prices in slots 9 and 10 (only the first update in a
new second, from the reserves before it), and, implicitly, the pair's token balances, which
equal the reserves right after a Sync. Getting the cumulative prices right matters for gas:
an SSTORE to a zero slot costs 20k, to a non-zero one 2.9k.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from eth_utils import keccak
from mev_common.messages import Log

SYNC_TOPIC = "0x" + keccak(text="Sync(uint112,uint112)").hex()
SWAP_TOPIC = "0x" + keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)").hex()
# Every event a Uniswap V3 pool emits when its storage changes. Its state (slot0, liquidity,
# fee growth, crossed ticks, oracle observations) is not rebuilt from logs here: such a pool is
# dirty until the warm EVM reforks (warm.py). V3 Swap's first indexed topic is the swapper.
V3_SWAP = "Swap(address,address,int256,int256,uint160,uint128,int24)"
V3_SWAP_TOPIC = "0x" + keccak(text=V3_SWAP).hex()
V3_POOL_TOPICS = frozenset(
    "0x" + keccak(text=sig).hex()
    for sig in (
        V3_SWAP,
        "Mint(address,address,int24,int24,uint128,uint256,uint256)",
        "Burn(address,int24,int24,uint128,uint256,uint256)",
        "Collect(address,address,int24,int24,uint128,uint128)",
        "Flash(address,address,uint256,uint256,uint256,uint256)",
        "Initialize(uint160,int24)",
        "IncreaseObservationCardinalityNext(uint16,uint16)",
        "SetFeeProtocol(uint8,uint8,uint8,uint8)",
        "CollectProtocol(address,address,uint128,uint128)",
    )
)
SLOT_TOKEN0, SLOT_TOKEN1 = 6, 7
SLOT_RESERVES, SLOT_PRICE0, SLOT_PRICE1 = 8, 9, 10
_U112, _U32, _U256 = (1 << 112) - 1, (1 << 32) - 1, (1 << 256) - 1


PROBE_SLOTS = 32  # balance mappings sit in the first few slots of any token we know


@dataclass(frozen=True)
class BalanceSlot:
    index: int
    key_first: bool  # Solidity keccak(key . index); Vyper keccak(index . key)

    def slot(self, owner: str) -> int:
        return mapping_slot(owner, self.index, self.key_first)


@dataclass(frozen=True)
class PairSlots:
    """The three storage words `_update` writes."""

    reserve0: int
    reserve1: int
    timestamp_last: int
    price0_cumulative: int
    price1_cumulative: int

    @classmethod
    def from_words(cls, packed: int, price0: int, price1: int) -> PairSlots:
        return cls(packed & _U112, (packed >> 112) & _U112, packed >> 224, price0, price1)

    def packed(self) -> int:
        return self.reserve0 | (self.reserve1 << 112) | (self.timestamp_last << 224)


def decode_sync(data: str) -> tuple[int, int]:
    raw = bytes.fromhex(data.removeprefix("0x"))
    if len(raw) != 64:
        raise ValueError(f"Sync data of {len(raw)} bytes, expected 64")
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def apply_sync(slots: PairSlots, reserve0: int, reserve1: int, timestamp: int) -> PairSlots:
    """What `UniswapV2Pair._update` leaves after a Sync of (reserve0, reserve1) at `timestamp`."""
    now = timestamp & _U32
    elapsed = (now - slots.timestamp_last) & _U32  # uint32 wrap, as in the pair
    p0, p1 = slots.price0_cumulative, slots.price1_cumulative
    if elapsed > 0 and slots.reserve0 != 0 and slots.reserve1 != 0:
        p0 = (p0 + ((slots.reserve1 << 112) // slots.reserve0) * elapsed) & _U256
        p1 = (p1 + ((slots.reserve0 << 112) // slots.reserve1) * elapsed) & _U256
    return PairSlots(reserve0, reserve1, now, p0, p1)


@lru_cache(maxsize=1 << 16)
def mapping_slot(key: str, index: int, key_first: bool = True) -> int:
    """Storage slot of `mapping(address => ...)` at `index` for `key` (Solidity: key first;
    Vyper: index first). Remembered: every backrun's carried slots (warm.carried_slots) hash the
    same few pools' balance slots, a keccak each (~5 a simulation)."""
    a = bytes.fromhex(key.removeprefix("0x").rjust(64, "0"))
    b = index.to_bytes(32, "big")
    return int.from_bytes(keccak(a + b if key_first else b + a), "big")


@dataclass(frozen=True)
class SwapLog:
    """A V2 `Swap(sender indexed, amount0In, amount1In, amount0Out, amount1Out, to indexed)`."""

    pair: str
    sender: str  # lower-case address
    to: str  # lower-case address
    amounts_in: tuple[int, int]
    amounts_out: tuple[int, int]


def decode_swap(entry: Log) -> SwapLog:
    raw = bytes.fromhex(entry.data.removeprefix("0x"))
    if len(raw) != 128 or len(entry.topics) != 3:
        raise ValueError(f"Swap log of {len(raw)} bytes and {len(entry.topics)} topics")
    words = [int.from_bytes(raw[i : i + 32], "big") for i in range(0, 128, 32)]
    sender, to = ("0x" + t.removeprefix("0x")[-40:].lower() for t in entry.topics[1:])
    return SwapLog(entry.address, sender, to, (words[0], words[1]), (words[2], words[3]))


def executor_deltas(
    logs: Iterable[Log], executor: str, pair_tokens: Mapping[str, tuple[str, str]]
) -> dict[str, int]:
    """How much of each token our executor gained (negative: paid) in this block's trades.

    Every transaction with a Swap sent by or to the executor is ours: its swaps move tokens
    only between their pairs and the executor, so per token the executor's change is the sum
    over those swaps of (out - in). ValueError when that cannot be known: a swap of ours sends
    to an outsider, or a pair's tokens are unknown."""
    me = executor.lower()
    swaps: dict[str, list[SwapLog]] = defaultdict(list)
    for entry in logs:
        if entry.topics and entry.topics[0] == SWAP_TOPIC:
            swaps[entry.tx_hash].append(decode_swap(entry))
    deltas: dict[str, int] = defaultdict(int)
    for tx_swaps in swaps.values():
        if not any(me in (s.sender, s.to) for s in tx_swaps):
            continue
        inside = {me} | {s.pair.lower() for s in tx_swaps}
        for swap in tx_swaps:
            if swap.to not in inside:
                raise ValueError(f"our trade sent {swap.pair}'s output to {swap.to}")
            tokens = pair_tokens.get(swap.pair)
            if tokens is None:
                raise ValueError(f"pair {swap.pair}: tokens unknown")
            for token, got, paid in zip(tokens, swap.amounts_out, swap.amounts_in, strict=True):
                deltas[token] += got - paid
    return {token: delta for token, delta in deltas.items() if delta}
