"""Detect with V3 pools: the registry keeps them beside the V2 pairs (one block, one rewind),
the search finds mixed V2/V3 cycles and emits V3 hops whose amounts are the pools' exact math,
and the loader's pure parts (CREATE2 candidates, ticks from Mint logs)."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import to_checksum_address
from mev_common.amm.cycles import CycleIndex, find_cycles
from mev_common.amm.v2 import V2Pool, get_amount_out
from mev_common.amm.v3 import V3Pool
from mev_common.amm.v3_book import V3_SWAP_TOPIC
from mev_common.amm.v3_math import get_sqrt_ratio_at_tick
from mev_common.chain.contracts import V3Dex
from mev_common.chain.pools import UNISWAP_V3_INIT_CODE_HASH, v3_pool_address
from mev_common.messages import Block, Log
from mev_common.settings import StrategiesSettings

from services.detect.opportunity import to_opportunity
from services.detect.pricing import GAS_PER_V3_HOP, gas_estimate
from services.detect.registry import PoolRegistry, RewindTooDeep
from services.detect.search import search
from services.detect.v3_loader import FEE_TIERS, allowlisted, candidate_pools

WETH = to_checksum_address("0x" + "0a" * 20)
USDC = to_checksum_address("0x" + "0b" * 20)  # WETH < USDC: token0 is WETH
V3 = to_checksum_address("0x" + "33" * 20)
V2 = to_checksum_address("0x" + "22" * 20)
TX = "0x" + "11" * 32
E18 = 10**18


def word(value: int) -> str:
    return "0x" + encode(["int256"], [value]).hex()


def v3_pool(tick: int = -196_260) -> V3Pool:
    """WETH/USDC 0.3 % at ~3,000 USDC per WETH (token1 per token0 in raw units: 3e-9), liquidity
    in three overlapping ranges around the price."""
    spacing = 60
    base = tick // spacing * spacing
    sqrt_price = get_sqrt_ratio_at_tick(tick) + 12_345
    pool = V3Pool(V3, WETH, USDC, 3000, spacing, sqrt_price, tick, 0)
    for low, high, liquidity in ((-120, 60, 2 * 10**16), (-600, 600, 10**16), (-60, 300, 10**16)):
        pool = pool.modify_position(base + low, base + high, liquidity)
    return pool


def v2_pair(off: float) -> V2Pool:
    """WETH/USDC V2 pair priced `off` times the V3 pool's USDC per WETH."""
    price = (v3_pool().sqrt_price_x96 / 2**96) ** 2
    reserve_weth = 500 * E18
    return V2Pool(V2, WETH, USDC, reserve_weth, int(reserve_weth * price * off), 30)


def strategies() -> StrategiesSettings:
    cfg = {"max_gas_price": 100 * 10**9, "min_profit": 0}
    return StrategiesSettings.model_validate(
        {"cross_dex_arbitrage": cfg, "cyclic_arbitrage": cfg, "backrun": cfg}
    )


def test_mixed_cycle_found_with_exact_v3_hops() -> None:
    pools: dict[str, V2Pool | V3Pool] = {V3: v3_pool(), V2: v2_pair(1.03)}  # V2 pays more USDC
    cycles = find_cycles(pools.values(), [WETH])
    assert len(cycles) == 2  # both directions of WETH -> USDC -> WETH over the two pools
    found = search(CycleIndex(cycles).touching([V3]), pools, strategies(), base_fee=10**9)
    assert len(found) == 1
    f = found[0]
    # the profitable direction: sell WETH on the V2 pair, buy it back on the V3 pool
    assert [h.pool for h in f.cycle.hops] == [V2, V3]
    assert f.gas == gas_estimate(2, 1) == 10_000 + 90_000 + GAS_PER_V3_HOP
    # the amounts are the pools' own exact math, computed here without the sizing code
    pair, pool = pools[V2], pools[V3]
    assert isinstance(pair, V2Pool) and isinstance(pool, V3Pool)
    usdc = get_amount_out(f.trade.amount_in, pair.reserve0, pair.reserve1, 30)
    result = pool.swap(False, usdc)
    assert result.amount1 == usdc  # the pool takes the whole input
    assert f.trade.amounts_out == (usdc, -result.amount0)
    assert f.trade.profit == -result.amount0 - f.trade.amount_in > 0
    assert result.ticks_crossed >= 1  # the optimum runs through more than one range
    block = Block(chain_id=1, number=7, hash="0x" + "07" * 32, parent_hash="0x" + "06" * 32,
                  timestamp=7, logs=[], base_fee_per_gas=10**9)  # fmt: skip
    opp = to_opportunity(f, pools, block, block.hash)
    assert [(h.kind, h.fee_bps) for h in opp.hops] == [("v2", 30), ("v3", 30)]
    assert [h.amount_in for h in opp.hops] == [f.trade.amount_in, usdc]
    assert opp.hops[1].amount_out == -result.amount0
    assert opp.expected_profit == f.trade.profit


def test_no_mixed_cycle_when_prices_agree() -> None:
    pools: dict[str, V2Pool | V3Pool] = {V3: v3_pool(), V2: v2_pair(1.0)}
    cycles = find_cycles(pools.values(), [WETH])
    assert search(cycles, pools, strategies(), base_fee=10**9) == []


def swap_log(sqrt_price: int, liquidity: int, tick: int) -> Log:
    data = encode(["int256", "int256", "uint160", "uint128", "int24"],
                  [5, -4, sqrt_price, liquidity, tick])  # fmt: skip
    return Log(address=V3, topics=[V3_SWAP_TOPIC, word(1), word(2)], data="0x" + data.hex(),
               log_index=0, tx_hash=TX)  # fmt: skip


def blk(number: int, logs: list[Log], reorg: bool = False, branch: str = "a") -> Block:
    h = "0x" + f"{ord(branch):02x}{number:062x}"
    return Block(chain_id=1, number=number, hash=h, parent_hash=h, timestamp=number, logs=logs,
                 reorg=reorg)  # fmt: skip


def test_registry_keeps_and_rewinds_v3_with_v2() -> None:
    registry = PoolRegistry(factories={})
    registry.load([(v2_pair(1.0), "A")], 10, "0x" + "00" * 32, [v3_pool()])
    assert set(registry.all_pools) == {V2, V3}
    before = registry.v3.pools[V3]
    moved = get_sqrt_ratio_at_tick(-196_000)
    assert registry.apply_block(blk(11, [swap_log(moved, 5 * 10**17, -196_000)])) == {V3}
    assert registry.all_pools[V3].sqrt_price_x96 == moved
    # a reorg at 11: the V3 pool is back to the snapshot, the other branch applies
    other = get_sqrt_ratio_at_tick(-196_500)
    assert registry.apply_block(blk(11, [swap_log(other, 4 * 10**17, -196_500)], True, "b"))
    assert registry.v3.pools[V3].sqrt_price_x96 == other
    registry.rewind(11)
    assert registry.v3.pools[V3] == before
    with pytest.raises(RewindTooDeep):
        registry.rewind(5)


def test_deny_listed_v3_pool_is_not_loaded() -> None:
    registry = PoolRegistry(factories={}, deny_pools=frozenset({V3}))
    registry.load([], 10, "0x" + "00" * 32, [v3_pool()])
    assert registry.v3.pools == {}


def test_candidate_pools_are_the_factory_create2_addresses() -> None:
    factory = "0x" + "fa" * 20
    dex = V3Dex("A", factory, UNISWAP_V3_INIT_CODE_HASH)
    got = candidate_pools([dex], [USDC, WETH, "0x" + "0c" * 20])
    assert len(got) == 3 * len(FEE_TIERS)  # three pairs, every tier
    assert v3_pool_address(factory, WETH, USDC, 3000, UNISWAP_V3_INIT_CODE_HASH) in got
    assert candidate_pools([dex], [USDC, WETH]) == candidate_pools([dex], [WETH, USDC])


def test_only_factories_the_executor_allowlists() -> None:
    """Detect trades a V3 factory's pools only if the executor's v3Factories() lists that
    factory with the same init code hash; an executor without V3 (the call fails) gets none."""
    a = V3Dex("A", to_checksum_address("0x" + "fa" * 20), UNISWAP_V3_INIT_CODE_HASH)
    b = V3Dex("B", to_checksum_address("0x" + "fb" * 20), UNISWAP_V3_INIT_CODE_HASH)
    code_hash = bytes.fromhex(UNISWAP_V3_INIT_CODE_HASH[2:])
    listed = [(a.factory, code_hash), (b.factory, b"\x01" * 32)]  # B: another pool code
    answer = "0x" + encode(["(address,bytes32)[]"], [listed]).hex()
    assert allowlisted([a, b], answer) == [a]
    assert allowlisted([a, b], "0x" + encode(["(address,bytes32)[]"], [[]]).hex()) == []
    assert allowlisted([a, b], "0x") == []  # no such function: an executor without V3
    assert allowlisted([a, b], RuntimeError("execution reverted")) == []


def test_backruns_take_v3_pools() -> None:
    """Pending SwapRouter swaps are decoded and enter the pending book, so a backrun knows who
    else goes first through a V3 pool: mixed cycles are backrun candidates like V2 ones."""
    pools: dict[str, V2Pool | V3Pool] = {V3: v3_pool(), V2: v2_pair(1.03)}
    cycles = find_cycles(pools.values(), [WETH])
    (backrun,) = search(cycles, pools, strategies(), base_fee=10**9, backrun=True)
    (block,) = search(cycles, pools, strategies(), base_fee=10**9)
    assert backrun.strategy == "backrun" and backrun.cycle == block.cycle
    assert backrun.trade == block.trade
