"""What a search trades a cycle as: its strategy (by hop count, or backrun) and its plan (max
fee, minimum profit, gas) under the strategies' settings, remembered per search shape so a
victim's search and its follow-ons share them (search.py's pre-screens read them)."""

from __future__ import annotations

from collections.abc import Mapping

from mev_common.amm.cycles import Cycle
from mev_common.messages import Strategy
from mev_common.settings import StrategiesSettings, StrategySettings

from services.detect.candidates import Plan, needed_by_hops
from services.detect.pricing import gas_estimate, max_fee_per_gas


def strategy_for(cycle: Cycle, backrun: bool) -> Strategy:
    if backrun:
        return "backrun"
    return "cross_dex_arbitrage" if len(cycle.hops) == 2 else "cyclic_arbitrage"


def plan_for(
    name: Strategy,
    hops: int,
    strategies: StrategiesSettings,
    base_fee: int,
    priority_fee: int,
    victim_max_fee: int | None = None,
) -> Plan | None:
    """None if the strategy is off or takes no cycle this long."""
    cfg: StrategySettings | None = getattr(strategies, name)
    if cfg is None or not cfg.enabled or hops > cfg.max_hops:
        return None
    max_fee = max_fee_per_gas(base_fee, priority_fee, cfg.max_gas_price, victim_max_fee)
    return Plan(name, max_fee, max(cfg.min_profit, 1), gas_estimate(hops))


# a search's plans and needs by (settings (frozen; kept alive with them, so their id is not
# reused), backrun, (base fee, tip, victim's max fee), hop counts): a victim's search and its
# follow-ons share them
_Plans = tuple[StrategiesSettings, dict[int, Plan | None], dict[int, int]]
Fees = tuple[int, int, int | None]
_plans: dict[tuple[int, bool, Fees, tuple[int, ...]], _Plans] = {}
PLANS = 1024


def plans_for(
    strategies: StrategiesSettings, backrun: bool, fees: Fees, lengths: Mapping[int, Cycle]
) -> tuple[dict[int, Plan | None], dict[int, int]]:
    """The plans and needs of a search over cycles of these hop counts (a cycle of each),
    remembered (`_plans`)."""
    key = (id(strategies), backrun, fees, tuple(lengths))
    known = _plans.get(key)
    if known is None or known[0] is not strategies:
        plans = {
            n: plan_for(strategy_for(one, backrun), n, strategies, *fees)
            for n, one in lengths.items()
        }
        if len(_plans) >= PLANS:
            _plans.clear()
        known = _plans[key] = strategies, plans, needed_by_hops(plans)
    return known[1], known[2]
