"""Uniswap V2 pair storage, rebuilt from `Sync` logs, so the warm EVM needs no RPC per block.

A pair's `_update` writes three things we patch: slot 8 (reserve0 | reserve1<<112 |
blockTimestampLast<<224), the cumulative prices in slots 9 and 10 (only the first update in a
new second, from the reserves before it), and, implicitly, the pair's token balances, which
equal the reserves right after a Sync. Getting the cumulative prices right matters for gas:
an SSTORE to a zero slot costs 20k, to a non-zero one 2.9k.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

SYNC_TOPIC = "0x" + keccak(text="Sync(uint112,uint112)").hex()
SWAP_TOPIC = "0x" + keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)").hex()
SLOT_TOKEN0, SLOT_TOKEN1 = 6, 7
SLOT_RESERVES, SLOT_PRICE0, SLOT_PRICE1 = 8, 9, 10
_U112, _U32, _U256 = (1 << 112) - 1, (1 << 32) - 1, (1 << 256) - 1


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


def mapping_slot(key: str, index: int, key_first: bool = True) -> int:
    """Storage slot of `mapping(address => ...)` at `index` for `key` (Solidity: key first;
    Vyper: index first)."""
    a = bytes.fromhex(key.removeprefix("0x").rjust(64, "0"))
    b = index.to_bytes(32, "big")
    return int.from_bytes(keccak(a + b if key_first else b + a), "big")
