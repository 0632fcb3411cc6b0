"""What a found trade may bid and what its gas is budgeted at: the executor's gas estimate per
hop and the max fee a trade (a backrun: never above its victim's) may pay. Pure; the search
(search.py) prices every cycle with these, simulate then measures the real gas.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mev_common.settings import StrategiesSettings, StrategySettings

if TYPE_CHECKING:
    from services.detect.search import Found

# Executor gas measured on anvil (docs/DEVNET.md): ~171k for 2 hops, ~89k per extra hop, flash
# ~+10k. The estimate errs high so a trade that pays here pays on chain.
GAS_BASE = 10_000
GAS_PER_HOP = 90_000
# A V3 hop: the pool's swap, its callback and transfer (~110k on anvil), plus a margin for the
# initialized ticks it crosses (~20-30k each); simulate measures the real figure before a send.
GAS_PER_V3_HOP = 160_000
DEFAULT_PRIORITY_FEE = 10**9
# A backrun is raised to its victim's max fee only if it pays its minimum there with this many
# times the gas estimate: simulate's budget (its gas limit: +20 % over the simulated gas plus
# cold and first-touch biases, services/simulate/decision.py) must pass at that fee too.
RAISE_GAS_FACTOR = 2


def gas_estimate(hops: int, v3_hops: int = 0) -> int:
    """`hops` in all, `v3_hops` of them through V3 pools."""
    return GAS_BASE + GAS_PER_HOP * (hops - v3_hops) + GAS_PER_V3_HOP * v3_hops


def max_fee_per_gas(
    base_fee: int, priority_fee: int, cap: int, victim_max_fee: int | None = None
) -> int:
    """What we would bid at most: two base fees (survives a few full blocks) plus the tip,
    never above the strategy's `max_gas_price`, nor for a backrun above its victim's max fee
    (fee-ordered anvil would mine it before its victim). A found backrun may bid up to that
    max fee (`at_victim_fee`)."""
    fee = min(cap, 2 * base_fee + priority_fee)
    return fee if victim_max_fee is None else min(fee, victim_max_fee)


def at_victim_fees(
    kept: list[Found], victim_max_fee: int | None, strategies: StrategiesSettings
) -> list[Found]:
    if victim_max_fee is None:
        return kept
    return [at_victim_fee(f, victim_max_fee, strategies) for f in kept]


def at_victim_fee(found: Found, victim_max_fee: int, strategies: StrategiesSettings) -> Found:
    """`found` capped at its victim's max fee (so submit bids the victim's own fees and fee
    ordering, by max fee on anvil or by tip, ties the two: ours lands right after the victim,
    services/submit/fees.py) when it still pays its minimum there with `RAISE_GAS_FACTOR` x the
    gas estimate; else as sized (a lower max fee: on anvil a later tx bidding between goes
    first)."""
    cfg: StrategySettings | None = getattr(strategies, found.strategy)
    if cfg is None or victim_max_fee <= found.max_fee:
        return found
    fee = min(cfg.max_gas_price, victim_max_fee)
    if found.trade.profit - RAISE_GAS_FACTOR * found.gas * fee < max(cfg.min_profit, 1):
        return found
    return replace(found, max_fee=fee)
