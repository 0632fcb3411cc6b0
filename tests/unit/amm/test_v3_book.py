"""V3Book: pool state from Swap/Mint/Burn/Initialize logs, and the reorg journal (pure)."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import to_checksum_address
from mev_common.amm.v3 import V3Pool, bitmap_of
from mev_common.amm.v3_book import (
    V3_BURN_TOPIC,
    V3_INITIALIZE_TOPIC,
    V3_MINT_TOPIC,
    V3_SWAP_TOPIC,
    RewindTooDeep,
    V3Book,
)
from mev_common.amm.v3_math import get_sqrt_ratio_at_tick
from mev_common.messages import Block, Log

POOL = to_checksum_address("0x" + "ab" * 20)  # what Log and the loader give
OWNER = "0x" + "00" * 12 + "cd" * 20
TX = "0x" + "11" * 32


def word(value: int) -> str:
    return "0x" + encode(["int256"], [value]).hex()


def log(topics: list[str], data: bytes, index: int = 0) -> Log:
    return Log(address=POOL, topics=topics, data="0x" + data.hex(), log_index=index, tx_hash=TX)


def mint(lower: int, upper: int, amount: int) -> Log:
    data = encode(["address", "uint128", "uint256", "uint256"], ["0x" + "cd" * 20, amount, 1, 1])
    return log([V3_MINT_TOPIC, OWNER, word(lower), word(upper)], data)


def burn(lower: int, upper: int, amount: int) -> Log:
    data = encode(["uint128", "uint256", "uint256"], [amount, 1, 1])
    return log([V3_BURN_TOPIC, OWNER, word(lower), word(upper)], data)


def swap(sqrt_price: int, liquidity: int, tick: int) -> Log:
    data = encode(
        ["int256", "int256", "uint160", "uint128", "int24"], [5, -4, sqrt_price, liquidity, tick]
    )
    return log([V3_SWAP_TOPIC, OWNER, OWNER], data)


def block(number: int, logs: list[Log], reorg: bool = False) -> Block:
    return Block(
        chain_id=1, number=number, hash=f"0x{number:064x}", parent_hash=f"0x{number - 1:064x}",
        timestamp=number, logs=logs, reorg=reorg,
    )  # fmt: skip


def fresh() -> V3Book:
    pool = V3Pool(POOL, "0x1", "0x2", 3000, 60, get_sqrt_ratio_at_tick(-30), -30, 0)
    book = V3Book()
    book.load([pool], 10, "0x")
    return book


def test_logs_keep_the_pool_and_a_reorg_rewinds_exactly() -> None:
    book = fresh()
    start = book.pools[POOL]
    assert book.apply_block(block(11, [mint(-120, 60, 10**18), mint(-600, -60, 5)])) == {POOL}
    after_mints = book.pools[POOL]
    assert after_mints.liquidity == 10**18  # -600..-60 does not hold tick -30
    assert after_mints.ticks == {-120: (10**18, 10**18), 60: (10**18, -(10**18)),
                                 -600: (5, 5), -60: (5, -5)}  # fmt: skip
    price = get_sqrt_ratio_at_tick(-100)
    book.apply_block(
        block(12, [swap(price, 10**18 + 5, -100), burn(-600, -60, 5), burn(-120, 60, 0)])
    )
    pool = book.pools[POOL]
    assert (pool.sqrt_price_x96, pool.tick) == (price, -100)
    assert pool.liquidity == 10**18  # the burnt range held the tick after the swap
    assert set(pool.ticks) == {-120, 60}  # cleared ticks leave the map and the bitmap
    assert pool.bitmap == bitmap_of(pool.ticks, 60) and len(pool.bitmap) == 2
    book.apply_block(
        block(
            12, [log([V3_INITIALIZE_TOPIC], encode(["uint160", "int24"], [1 << 96, 0]))], reorg=True
        )
    )
    assert book.pools[POOL] == after_mints.after_swap(1 << 96, 0, after_mints.liquidity)
    book.rewind(11)
    assert book.pools[POOL] == start
    with pytest.raises(RewindTooDeep):
        book.rewind(5)


def test_a_malformed_log_is_counted_not_applied() -> None:
    book = fresh()
    bad = log([V3_MINT_TOPIC, OWNER], b"")
    assert book.apply_block(block(11, [bad, swap(1 << 96, 7, 0)])) == {POOL}
    assert book.skipped_logs == 1 and book.pools[POOL].liquidity == 7
