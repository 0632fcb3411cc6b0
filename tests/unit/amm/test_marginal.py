"""The per-hop marginal-rate test detect's search runs before a V3 cycle's profit bound: it
may skip a cycle only where continuous_optimum would have returned (0, 0) anyway, and on a
devnet-like state (the deposits' V3 prices, V2 reserves moved by swaps) it skips most."""

from __future__ import annotations

import random

from mev_common.amm.cycles import find_cycles
from mev_common.amm.legs import cycle_legs
from mev_common.amm.marginal import hop_rate, no_input_profits
from mev_common.amm.mixed_sizing import continuous_optimum
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool

from bench.detect_profile import devnet_like


def _states(seed: int) -> dict[str, V2Pool | V3Pool]:
    """The devnet's pools with each V2 pair's reserves moved by up to 3% either way."""
    rng = random.Random(seed)
    _, pools, v3_pools = devnet_like()
    out: dict[str, V2Pool | V3Pool] = {p.address: p for p in v3_pools}
    for pool, _dex in pools:
        f = 1 + rng.uniform(-0.03, 0.03)
        out[pool.address] = V2Pool(
            pool.address, pool.token0, pool.token1,
            int(pool.reserve0 * f), int(pool.reserve1 / f), pool.fee_bps,
        )  # fmt: skip
    return out


def test_a_skipped_cycle_is_one_the_bound_finds_no_profit_on() -> None:
    deployment, _, _ = devnet_like()
    weth = deployment["tokens"]["WETH"]["address"]
    skipped = kept = 0
    for seed in range(3):
        pools = _states(seed)
        for cycle in find_cycles(pools.values(), [weth], max_hops=3):
            if not any(isinstance(pools[h.pool], V3Pool) for h in cycle.hops):
                continue
            rates = [hop_rate(pools[h.pool], h.token_in) for h in cycle.hops]
            bound = continuous_optimum(cycle_legs(cycle, pools))
            if no_input_profits(rates):
                skipped += 1
                assert bound == (0, 0), cycle
            else:
                kept += 1
                assert bound[0] > 0, cycle  # the rate above 1 at x = 0: some input profits
    assert skipped > 2 * kept > 0  # most cycles through a V3 pool cannot profit


def test_a_v3_pool_without_liquidity_at_its_price_is_never_skipped_on() -> None:
    pool = V3Pool("0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, 3000, 60, 2**96, 0, 0)
    assert hop_rate(pool, pool.token0) is None
    assert not no_input_profits([None, (1, 2)])


def test_rates_compose_exactly() -> None:
    pair = V2Pool("0x" + "44" * 20, "0x" + "22" * 20, "0x" + "33" * 20, 1000, 2000, 30)
    assert hop_rate(pair, pair.token0) == (9970 * 2000, 1000 * 10_000)
    back = hop_rate(pair, pair.token1)
    assert back == (9970 * 1000, 2000 * 10_000)
    # through the pair and back: 0.997^2 < 1, nothing to gain
    assert no_input_profits([hop_rate(pair, pair.token0), back])
    assert no_input_profits([(3, 2), (2, 3)])
    assert not no_input_profits([(3, 2), (21, 30)])
