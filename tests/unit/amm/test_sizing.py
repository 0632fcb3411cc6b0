"""Cycle sizing against complete brute force, a rigorous upper bound, and golden values."""

from __future__ import annotations

import random
from math import isqrt

from mev_common.amm.cycles import Cycle, CycleHop
from mev_common.amm.sizing import (
    CycleTrade,
    _bound,
    compose,
    profit_bound,
    size_cycle,
    size_trade,
)
from mev_common.amm.v2 import V2Pool, get_amount_out, get_amounts_out, min_amount_in

E18 = 10**18
USDC = 10**6
SCAN_LIMIT = 4_000

Path = list[tuple[int, int, int]]


def profit_at(amount_in: int, path: Path) -> int:
    """Exact profit of one input; an input some hop pays nothing for cannot be traded."""
    amount = amount_in
    for reserve_in, reserve_out, fee in path:
        if amount <= 0:
            return -amount_in
        amount = get_amount_out(amount, reserve_in, reserve_out, fee)
    return amount - amount_in


def brute_force(path: Path, max_input: int | None = None) -> int | None:
    """The exact optimum profit (0 if none), or None if too wide to scan here.

    Complete: above x = (A - B) / C even the unrounded output is below the input, so every
    profitable input is scanned, either one by one, or by first-hop output y with the least
    input that reaches y (any other input with the same y earns the same and costs more).
    """
    big_a, big_b, big_c = compose(path)
    if big_a <= big_b:
        return 0
    top = (big_a - big_b) // big_c + 1
    if max_input is not None:
        top = min(top, max_input)
    if top <= SCAN_LIMIT:
        return max(0, *(profit_at(x, path) for x in range(1, top + 1)))
    reserve_in, reserve_out, fee = path[0]
    y_top = get_amount_out(top, reserve_in, reserve_out, fee)
    if y_top > SCAN_LIMIT:
        return None
    best = 0
    for y in range(1, y_top + 1):
        least = min_amount_in(y, reserve_in, reserve_out, fee)
        assert least is not None
        best = max(best, profit_at(least, path))
    return best


def random_small_cycle(rng: random.Random) -> Path:
    """2 or 3 hops of small pools about 5 % apart; some tokens are ~1000x coarser than the
    start token, as a 6-decimal token is against WETH, so scans stay exhaustive and fast."""
    hops = rng.choice([2, 2, 3])
    scales = [1.0] + [rng.choice([1.0, 1.0, 0.3, 0.02, 0.001]) for _ in range(hops - 1)]
    path = []
    for hop in range(hops):
        depth = rng.randint(1_000, 60_000)
        reserve_in = max(2, int(depth * scales[hop] * rng.uniform(0.95, 1.05)))
        reserve_out = max(2, int(depth * scales[(hop + 1) % hops] * rng.uniform(0.95, 1.05)))
        path.append((reserve_in, reserve_out, rng.choice([30, 30, 25, 5, 100, 0])))
    return path


def check_against_brute_force(path: Path, max_input: int | None = None) -> bool:
    expected = brute_force(path, max_input)
    if expected is None:
        return False
    trade = size_trade(path, max_input)
    got = 0 if trade is None else trade.profit
    assert got == expected, (path, max_input, trade, expected)
    if trade is not None:
        assert trade.amounts_out == tuple(get_amounts_out(trade.amount_in, path)[1:])
        assert trade.profit == trade.amounts_out[-1] - trade.amount_in
        assert max_input is None or trade.amount_in <= max_input
    return got > 0


def test_equals_exhaustive_brute_force_on_random_small_cycles() -> None:
    rng = random.Random(2024)
    checked = profitable = 0
    while profitable < 400:  # unprofitable cycles are checked too, but do not count
        path = random_small_cycle(rng)
        if brute_force(path) is None:
            continue
        checked += 1
        profitable += check_against_brute_force(path)
    assert checked < 3000


def test_equals_exhaustive_brute_force_under_an_input_cap() -> None:
    rng = random.Random(77)
    checked = 0
    while checked < 150:
        path = random_small_cycle(rng)
        trade = size_trade(path)
        if trade is None or brute_force(path) is None:
            continue
        checked += 1
        cap = rng.randint(1, 2 * trade.amount_in)
        check_against_brute_force(path, cap)


def deep_cycle(rng: random.Random, hops: int) -> Path:
    """Realistic deep pools: WETH (18 decimals) -> USDC (6) [-> DAI (18)] -> WETH."""
    price = rng.uniform(1_000, 4_000)
    gap = rng.uniform(1.003, 1.05)
    weth_a, weth_b = rng.randint(50, 5_000) * E18, rng.randint(50, 5_000) * E18
    usdc_a = int(weth_a // 10**12 * price * gap)
    fees = [rng.choice([30, 25, 5]) for _ in range(hops)]
    if hops == 2:
        usdc_b = int(weth_b // 10**12 * price)
        return [(weth_a, usdc_a, fees[0]), (usdc_b, weth_b, fees[1])]
    stable = rng.randint(1_000_000, 50_000_000)
    return [
        (weth_a, usdc_a, fees[0]),
        (stable * USDC, stable * E18, fees[1]),
        (int(weth_b * price), weth_b, fees[2]),
    ]


def test_deep_pools_with_6_decimal_tokens_are_within_wei_of_the_optimum() -> None:
    """No real optimum can beat the unrounded curve, so `profit_bound` proves how close we are;
    the input must also be the least one that earns its output (the 6-decimal steps)."""
    rng = random.Random(11)
    sized = 0
    for i in range(200):
        path = deep_cycle(rng, 2 + i % 2)
        trade = size_trade(path)
        if trade is None:
            continue
        sized += 1
        bound = profit_bound(path)
        assert 0 <= bound - trade.profit <= 3
        assert (bound - trade.profit) * 1000 <= trade.profit  # the 0.1 % criterion, with room
        assert profit_at(trade.amount_in - 1, path) < trade.profit
        # Local exhaustive search over the coarse USDC amount finds nothing better.
        reserve_in, reserve_out, fee = path[0]
        y = trade.amounts_out[0]
        for usdc in range(y - 50, y + 51):
            least = min_amount_in(usdc, reserve_in, reserve_out, fee)
            assert least is not None and profit_at(least, path) <= trade.profit + 3
    assert sized > 150


def test_golden_two_hop_18_decimals() -> None:
    path = [(1000 * E18, 3_060_000 * E18, 30), (3_000_000 * E18, 1000 * E18, 30)]
    assert size_trade(path) == CycleTrade(
        3441583168048659921,
        (10463746940965505364767, 3465401134288677234),
        23817966240017313,
    )


def test_golden_two_hop_through_usdc_and_why_the_closed_form_alone_is_not_enough() -> None:
    path = [(3000 * E18, 9_090_000 * USDC, 30), (15_000_000 * USDC, 5000 * E18, 25)]
    trade = size_trade(path)
    assert trade == CycleTrade(
        4170508934818733244, (12581294483, 4179783374411177137), 9274439592443893
    )
    # The unrounded optimum, floored, sits inside a micro-USDC step: 0.15 gwei worse.
    assert trade.profit - profit_at(4170508934972693442, path) == 153960198


def test_golden_three_hop() -> None:
    path = [
        (2000 * E18, 6_100_000 * USDC, 30),
        (4_000_000 * USDC, 4_000_000 * E18, 5),
        (6_000_000 * E18, 2000 * E18, 30),
    ]
    assert size_trade(path) == CycleTrade(
        2848328789999224772,
        (8649059871, 8626092768811039570173, 2862634951070332147),
        14306161071107375,
    )


def test_golden_capped_input() -> None:
    path = [(3000 * E18, 9_090_000 * USDC, 30), (15_000_000 * USDC, 5000 * E18, 25)]
    trade = size_trade(path, max_input=2 * E18)
    assert trade == CycleTrade(
        1999999999989043925, (6037806871, 2006765040034311083), 6765040045267158
    )
    assert profit_at(2 * E18, path) == 6765040034311083  # the cap itself earns less


def test_unprofitable_cycles_return_none() -> None:
    profitable = [(1000 * E18, 3_060_000 * E18, 30), (3_000_000 * E18, 1000 * E18, 30)]
    reverse = [(1000 * E18, 3_000_000 * E18, 30), (3_060_000 * E18, 1000 * E18, 30)]
    same_price = [(1000 * E18, 3_000_000 * E18, 0), (3_000_000 * E18, 1000 * E18, 0)]
    within_fees = [(1000 * E18, 3_010_000 * E18, 30), (3_000_000 * E18, 1000 * E18, 30)]
    for path in (reverse, same_price, within_fees):
        assert size_trade(path) is None
        assert profit_bound(path) == 0
    assert size_trade(profitable, max_input=0) is None
    assert size_trade([(0, 10**6, 30), (10**6, 10**6, 30)]) is None  # an empty pool
    # The unrounded curve profits, but with 3-wei pools no integer input does.
    assert profit_bound([(3, 5, 0), (4, 3, 0)]) > 0
    assert size_trade([(3, 5, 0), (4, 3, 0)]) is None


def test_min_profit_drops_small_trades() -> None:
    path = [(1000 * E18, 3_060_000 * E18, 30), (3_000_000 * E18, 1000 * E18, 30)]
    best = 23817966240017313
    assert size_trade(path, min_profit=best) is not None
    assert size_trade(path, min_profit=best + 1) is None


def test_size_cycle_reads_the_pools_of_the_cycle() -> None:
    weth, dai = "0xWETH", "0xDAI"
    pools = {
        "0xP1": V2Pool("0xP1", dai, weth, 3_000_000 * E18, 1000 * E18),
        "0xP2": V2Pool("0xP2", dai, weth, 3_060_000 * E18, 1000 * E18),
    }
    cycle = Cycle((CycleHop("0xP2", weth, dai), CycleHop("0xP1", dai, weth)))
    trade = size_cycle(cycle, pools)
    assert trade is not None and trade.profit == 23817966240017313
    assert (
        size_cycle(Cycle((CycleHop("0xP1", weth, dai), CycleHop("0xP2", dai, weth))), pools) is None
    )


# Two coarse middle tokens in a row (WETH -> USDC -> USDT -> WETH): the input absorbs the first
# one's rounding only, so the middle hop's floor decides the optimum.


def window_optimum(path: Path, profit: int, max_input: int | None = None) -> int:
    """The exact optimum, given a profit some input makes, by trying every first-hop output u
    that could beat it. Complete: an input earns at most what the least input reaching its u
    earns, and the unrounded profit A*x/(B+C*x) - x (an upper bound) exceeds `profit` only
    strictly between the roots of C*x^2 + (B + C*profit - A)*x + profit*B."""
    big_a, big_b, big_c = compose(path)
    linear = big_b + big_c * profit - big_a
    root = isqrt(linear * linear - 4 * big_c * profit * big_b)
    x_low = max(1, (-linear - root) // (2 * big_c))
    x_high = (-linear + root) // (2 * big_c) + 1
    if max_input is not None:
        x_high = min(x_high, max_input)
    reserve_in, reserve_out, fee = path[0]
    best = profit
    u_low = get_amount_out(x_low, reserve_in, reserve_out, fee)
    for u in range(max(1, u_low), get_amount_out(x_high, reserve_in, reserve_out, fee) + 1):
        least = min_amount_in(u, reserve_in, reserve_out, fee)
        if least is not None and (max_input is None or least <= max_input):
            best = max(best, profit_at(least, path))
    return best


def test_two_coarse_middle_tokens_equal_exhaustive_brute_force_on_small_cycles() -> None:
    rng = random.Random(606)
    profitable = 0
    while profitable < 150:
        depth = rng.randint(200_000, 4_000_000)
        usdc, usdt = rng.uniform(0.0005, 0.003), rng.uniform(0.0005, 0.003)
        path = [
            (int(depth * rng.uniform(0.97, 1.03)), int(depth * usdc), rng.choice([30, 5, 25])),
            (int(depth * usdc * rng.uniform(0.97, 1.03)), int(depth * usdt), rng.choice([30, 5])),
            (int(depth * usdt * rng.uniform(0.97, 1.03)), depth, rng.choice([30, 25])),
        ]
        if brute_force(path) is None:
            continue
        profitable += check_against_brute_force(path)
        trade = size_trade(path)
        if trade is not None:  # and under a cap, the start token balance
            check_against_brute_force(path, rng.randint(1, 2 * trade.amount_in))


# A 3-pool cycle of bench scenario 5 (seeded devnet pools): WETH -> USDC -> USDT -> WETH.
TWO_COARSE = [
    (396632998735282127386, 1240008876002, 30),
    (5156139096811, 5281090635128, 30),
    (1899417506048, 655282179872937717760, 30),
]


def test_golden_two_coarse_middle_tokens_is_the_proven_optimum() -> None:
    trade = size_trade(TWO_COARSE)
    assert trade == CycleTrade(
        9675895885294997039,
        (29443256150, 29896095939, 10124075096289781703),
        448179210994784664,
    )
    assert window_optimum(TWO_COARSE, trade.profit) == trade.profit  # no input does better
    assert profit_bound(TWO_COARSE) - trade.profit == 438
    # Without the middle search (the default before) the walk stops 43,804,224 wei short, and
    # degenbot 0.3.0's input (its float optimum, in scenario 5) 145,017,582 wei short.
    old = size_trade(TWO_COARSE, middle_search=False)
    assert old is not None and trade.profit - old.profit == 43_804_224
    assert trade.profit - profit_at(9675856224645761024, TWO_COARSE) == 145_017_582


def two_coarse_cycle(rng: random.Random) -> Path:
    """Realistic deep pools: WETH (18 decimals) -> USDC (6) -> USDT (6) -> WETH."""
    price = rng.uniform(1_000, 4_000)
    weth_a, weth_b = rng.randint(50, 2_000) * E18, rng.randint(50, 2_000) * E18
    stable = rng.randint(1_000_000, 20_000_000) * USDC
    return [
        (weth_a, int(weth_a // 10**12 * price * rng.uniform(1.003, 1.03)), rng.choice([30, 5])),
        (stable, int(stable * rng.uniform(0.995, 1.005)), rng.choice([30, 5, 1])),
        (int(weth_b // 10**12 * price), weth_b, rng.choice([30, 25])),
    ]


def test_two_coarse_middle_tokens_find_the_proven_optimum_on_deep_pools() -> None:
    """Exact on realistic pools: every first-hop output (each a ~3e8-wei step of the input)
    whose least input could beat the answer is tried, and none does. The default is that
    optimum (middle_hits.py), as gap_ppm=0 is, and never below the old default."""
    rng = random.Random(31)
    sized = 0
    while sized < 12:
        path = two_coarse_cycle(rng)
        exact = size_trade(path, gap_ppm=0, max_steps=0)
        if exact is None:
            continue
        sized += 1
        assert window_optimum(path, exact.profit) == exact.profit, path
        trade, old = size_trade(path), size_trade(path, middle_search=False)
        assert trade == exact and old is not None and old.profit <= trade.profit
        assert exact.profit - trade.profit <= profit_bound(path) - trade.profit < 2 * 10**6


def test_near_parity_cycles_skip_the_middle_search() -> None:
    """18-decimal tokens near parity are not coarse: the middle search must not engage (it once
    flood-filled the whole window on these reserves and never returned)."""
    reserves = [
        (161083241956065133053307, 160439552944407230545920, 30),
        (238744623772280185677437, 239833048284116432191488, 30),
        (750536680320769504690237, 767794732726966347104256, 30),
    ]
    assert size_trade(reserves) == size_trade(reserves, middle_search=False)


def test_bound_reads_the_binding_cap_off_the_root_like_the_square() -> None:
    """`_bound` tells a cap below the optimum by comparing B + C*cap with isqrt(A*B) instead
    of squaring it (the hot path has the root): equal on every small curve and cap, including
    B + C*cap == isqrt(A*B) on an A*B that is a square and on one that is not."""

    def squared(big_a: int, big_b: int, big_c: int, cap: int) -> int:
        """The bound as written before (2026-12-02): the square against A*B."""
        if big_a <= big_b:
            return 0
        if (big_b + big_c * cap) ** 2 < big_a * big_b:
            return max(0, -(-big_a * cap // (big_b + big_c * cap)) - cap)
        return -(-(big_a + big_b - 2 * isqrt(big_a * big_b)) // big_c)

    edges = {"square": 0, "not square": 0}
    for big_a in range(1, 60):
        for big_b in range(1, 25):
            for big_c in range(1, 6):
                for cap in range(1, 12):
                    curve = (big_a, big_b, big_c)
                    assert _bound(curve, cap) == squared(big_a, big_b, big_c, cap), (curve, cap)
                    root = isqrt(big_a * big_b)
                    if big_a > big_b and big_b + big_c * cap == root:
                        edges["square" if root * root == big_a * big_b else "not square"] += 1
    assert edges["square"] > 0 and edges["not square"] > 0  # both sides of the edge were met
