"""Cycle enumeration with exact counts, start-token choice, determinism, and the pool index."""

from __future__ import annotations

import random

from mev_common.amm.cycles import Cycle, CycleHop, CycleIndex, cycle_reserves, find_cycles
from mev_common.amm.v2 import V2Pool

WETH, USDC, A, B, C = "0xWETH", "0xUSDC", "0xAAAA", "0xBBBB", "0xCCCC"


def pool(address: str, token0: str, token1: str, fee_bps: int = 30) -> V2Pool:
    return V2Pool(address, token0, token1, 1000, 2000, fee_bps)


# Two pools of A/WETH, one of B/WETH, one of A/B.
ONE_BASE_GRAPH = [
    pool("0x01", A, WETH),
    pool("0x02", WETH, A),
    pool("0x03", B, WETH),
    pool("0x04", A, B),
]


def check_closed(cycle: Cycle, pools: dict[str, V2Pool]) -> None:
    for hop, following in zip(cycle.hops, cycle.hops[1:] + cycle.hops[:1], strict=True):
        assert hop.token_out == following.token_in
        assert {hop.token_in, hop.token_out} == {pools[hop.pool].token0, pools[hop.pool].token1}
    assert len(set(cycle.pools)) == len(cycle.hops)


def test_one_base_token_graph() -> None:
    pools = ONE_BASE_GRAPH
    cycles = find_cycles(pools, [WETH])
    assert [c.pools for c in cycles] == [
        ("0x01", "0x02"),
        ("0x02", "0x01"),
        ("0x01", "0x04", "0x03"),
        ("0x02", "0x04", "0x03"),
        ("0x03", "0x04", "0x01"),
        ("0x03", "0x04", "0x02"),
    ]
    assert cycles[2].hops == (
        CycleHop("0x01", WETH, A),
        CycleHop("0x04", A, B),
        CycleHop("0x03", B, WETH),
    )
    assert all(c.start_token == WETH for c in cycles)
    by_address = {p.address: p for p in pools}
    for cycle in cycles:
        check_closed(cycle, by_address)
    assert len(find_cycles(pools, [WETH], max_hops=2)) == 2


def test_two_base_tokens_and_a_triangle_without_any() -> None:
    pools = [
        pool("0x01", WETH, USDC),
        pool("0x02", USDC, WETH),
        pool("0x03", A, WETH),
        pool("0x04", USDC, A),
        pool("0x05", B, USDC),
        pool("0x06", A, B),
        pool("0x07", A, C),
        pool("0x08", B, C),
    ]
    cycles = find_cycles(pools, [WETH, USDC])
    two = [c for c in cycles if len(c.hops) == 2]
    three = [c for c in cycles if len(c.hops) == 3]
    # WETH/USDC on two pools: 2 directions. Triangles: {WETH, USDC, A} 2 pool choices x 2
    # directions, from WETH; {USDC, A, B} 1 x 2, from USDC; {A, B, C} has no base token.
    assert len(two) == 2 and {c.start_token for c in two} == {WETH}
    assert len(three) == 6
    assert [c.start_token for c in three] == [WETH] * 4 + [USDC] * 2
    # Preferring USDC moves the start of the mixed triangles and the WETH/USDC loops.
    assert {c.start_token for c in find_cycles(pools, [USDC, WETH])} == {USDC}
    assert find_cycles(pools, []) == ()


def test_order_does_not_depend_on_input_order() -> None:
    rng = random.Random(4)
    tokens = [WETH, USDC, A, B, C]
    pools = [pool(f"0x{i:02x}", *rng.sample(tokens, 2), rng.choice([25, 30])) for i in range(25)]
    expected = find_cycles(pools, [WETH, USDC])
    for _ in range(5):
        rng.shuffle(pools)
        assert find_cycles(pools, [WETH, USDC]) == expected
    by_address = {p.address: p for p in pools}
    for cycle in expected:
        check_closed(cycle, by_address)
    assert len(set(expected)) == len(expected)


def test_complete_graph_counts() -> None:
    # K4 on WETH, A, B, C with one pool per pair: 4 triangles, 3 contain WETH, 2 directions.
    tokens = [WETH, A, B, C]
    pools = [pool(f"0x{i}{j}", tokens[i], tokens[j]) for i in range(4) for j in range(i + 1, 4)]
    assert len(find_cycles(pools, [WETH])) == 6
    # Every pair doubled: 6 pairs x 2 directed 2-hop loops (3 with WETH); triangles 2^3 x 2.
    doubled = pools + [p._replace(address=p.address + "b") for p in pools]
    cycles = find_cycles(doubled, [WETH])
    assert sum(len(c.hops) == 2 for c in cycles) == 3 * 2
    assert sum(len(c.hops) == 3 for c in cycles) == 3 * 8 * 2


def test_index_finds_exactly_the_cycles_through_changed_pools() -> None:
    pools = ONE_BASE_GRAPH
    cycles = find_cycles(pools, [WETH])
    index = CycleIndex(cycles)
    assert index.of_pool("0x01") == (cycles[0], cycles[1], cycles[2], cycles[4])
    assert len(index.of_pool("0x04")) == 4
    assert index.of_pool("0x99") == ()
    assert index.touching(["0x03"]) == list(cycles[2:])
    assert index.touching(["0x02", "0x01", "0x02"]) == list(cycles)
    assert index.touching([]) == []


def test_through_gives_the_index_own_tuple_and_pools_are_remembered() -> None:
    """Detect keeps a search's layout by the tuple's identity: asked again for the same pools
    (in any order), `through` gives the very same tuple, equal to `touching`'s list."""
    index = CycleIndex(find_cycles(ONE_BASE_GRAPH, [WETH]))
    first = index.through(["0x03", "0x01"])
    assert index.through(["0x01", "0x03", "0x01"]) is first
    assert list(first) == index.touching(["0x01", "0x03"])
    cycle = first[0]
    assert cycle.pools is cycle.pools == tuple(hop.pool for hop in cycle.hops)
    assert Cycle(cycle.hops).pools == cycle.pools  # an equal cycle: its own, equal answer


def test_cycle_reserves_orients_each_pool() -> None:
    pools = {"0x01": V2Pool("0x01", A, WETH, 10, 20, 25), "0x02": V2Pool("0x02", A, WETH, 30, 40)}
    cycle = Cycle((CycleHop("0x01", WETH, A), CycleHop("0x02", A, WETH)))
    assert cycle_reserves(cycle, pools) == [(20, 10, 25), (30, 40, 30)]


def test_may_profit_never_rejects_a_profitable_cycle() -> None:
    """The pre-filter is exact as a filter: over random reserves, every cycle it rejects is one
    sizing finds no profit on, and it passes exactly those whose marginal rate product > 1."""
    from mev_common.amm.cycles import may_profit
    from mev_common.amm.sizing import size_trade

    rng = random.Random(4)
    rejected = passed_and_profitable = 0
    for _ in range(400):
        pools = []
        for address, t0, t1 in (("P1", "W", "U"), ("P2", "W", "U"), ("P3", "U", "D"),
                                ("P4", "D", "W")):  # fmt: skip
            r = rng.randint(10**6, 10**24)
            pools.append(V2Pool(address, t0, t1, r, int(r * rng.uniform(0.97, 1.03)), 30))
        by_address = {p.address: p for p in pools}
        for cycle in find_cycles(pools, ["W"], max_hops=3):
            trade = size_trade(cycle_reserves(cycle, by_address))
            if not may_profit(cycle, by_address):
                rejected += 1
                assert trade is None, cycle
            elif trade is not None:
                passed_and_profitable += 1
    assert rejected > 400 and passed_and_profitable > 100
