"""Whether a simulated trade is worth sending, and the numbers the bundle carries. Pure.

Money rules: profit after gas at the fee cap must reach the strategy's minimum; the calldata's
`minProfit` is a share of the simulated profit, so the chain reverts a trade that got worse,
and never less than the most the transaction can cost (gas limit x fee cap) plus the strategy's
minimum, so a trade that would land at a net loss reverts on chain instead. The profit is in
wei (simulator.py refuses any profit token but WETH), so gas and profit compare directly.
The gas limit leaves room for state drift but never exceeds the strategy's limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from mev_common.messages import Opportunity
from mev_common.settings import PerformanceSettings, StrategySettings


class SimResultLike(Protocol):
    @property
    def success(self) -> bool: ...
    @property
    def gas_used(self) -> int: ...
    @property
    def victim_failed(self) -> bool: ...


GAS_MARGIN = Fraction(6, 5)  # +20 %: reserves move between simulation and inclusion
# What a victim run first in one pyrevm journal leaves warm for us but is cold on chain. The
# simulator runs backruns as two transactions (engine.run_backrun, gas exact) whenever it knows
# the pools' token balance slots; this covers the fallback (a pool not prefetched yet) and is
# a margin otherwise: two pairs and two tokens, each an account (2.6k) plus a few slots (2.1k).
BACKRUN_COLD_BIAS = 30_000
# A pair first touched in a block writes its cumulative prices: ~+22k gas on chain that the
# simulation does not pay when the pair was updated in the same second. Measured on the devnet:
# landed backruns used up to 65k more gas than simulated over 2-3 pairs, and ran out of gas
# inside the swap with a 20 % margin alone. Counted in the fee decision and the limit.
FIRST_TOUCH_PER_HOP = 25_000


@dataclass(frozen=True)
class Stale:
    reason: str  # "timeout", "not_head", "past_deadline", "ahead"


def budget_ms(opp: Opportunity, performance: PerformanceSettings) -> int:
    """How old an opportunity may be when simulated. A backrun races the victim's block (the
    short `decision_timeout_ms`); a block opportunity is priced on the head's end state and
    stays valid until the next block, which `staleness` checks (`not_head`) whatever its age:
    the shared 250 ms dropped block opportunities of a burst as `stale_timeout` while their
    block was still the head. `block_decision_timeout_ms` only bounds a backlog."""
    if opp.victim is None:
        return performance.block_decision_timeout_ms
    return performance.decision_timeout_ms


def staleness(
    opp: Opportunity, head_number: int | None, age_ms: float, timeout_ms: int
) -> Stale | None:
    """Why this opportunity must not be simulated now, or None. `ahead` means our chain view
    has not reached the opportunity's block yet (wait, don't drop)."""
    if age_ms > timeout_ms:
        return Stale("timeout")
    if head_number is None or opp.block_number > head_number:
        return Stale("ahead")
    if opp.deadline_block and head_number >= opp.deadline_block:
        return Stale("past_deadline")
    if opp.block_number != head_number:
        return Stale("not_head")
    return None


@dataclass
class TakenPools:
    """Pools of the bundles published at the current block. Submit sends one trade per pool at
    a time (services/submit/conflicts.py): a later opportunity of the same block through one of
    them would be refused there, so simulate drops it as `superseded` instead of spending its
    victim trace and two EVM runs on it. At a block's burst of opportunities that work is what
    made the rest of the burst time out (1,599 `stale_timeout` for 226 published on the devnet
    flow, loaded bench). A new block frees every pool."""

    block: int = -1
    pools: set[str] = field(default_factory=set)

    def taken(self, opp: Opportunity) -> bool:
        return opp.block_number == self.block and any(h.pool in self.pools for h in opp.hops)

    def take(self, opp: Opportunity) -> None:
        if opp.block_number < self.block:  # a late one of an older block frees nothing
            return
        if opp.block_number > self.block:
            self.block, self.pools = opp.block_number, set()
        self.pools.update(h.pool for h in opp.hops)


def fee_cap(opp: Opportunity, strategy: StrategySettings) -> int:
    """The most we pay per gas: detect's cap for this opportunity, never above the strategy's."""
    return min(opp.max_fee_per_gas or strategy.max_gas_price, strategy.max_gas_price)


def gas_for_fee(gas_used: int, backrun: bool, hops: int = 0) -> int:
    """Gas to budget for: the simulated gas plus what the chain may charge on top."""
    return gas_used + (BACKRUN_COLD_BIAS if backrun else 0) + FIRST_TOUCH_PER_HOP * hops


def gas_limit_for(gas_used: int, backrun: bool, hops: int = 0) -> int:
    budget = gas_for_fee(gas_used, backrun, hops)
    return -(-budget * GAS_MARGIN.numerator // GAS_MARGIN.denominator)


def min_profit_for(profit: int, share: float) -> int:
    """floor(profit x share), exact: the share goes through its decimal text, not binary."""
    ratio = Fraction(str(share))
    return max(0, profit * ratio.numerator // ratio.denominator)


def gas_floor(gas_limit: int, fee_cap_wei: int, strategy_min_profit: int) -> int:
    """The least `minProfit` may be: the most the tx can pay for gas plus the strategy minimum."""
    return gas_limit * fee_cap_wei + strategy_min_profit


@dataclass(frozen=True)
class Decision:
    ok: bool
    reason: str  # "pass" or why not
    net_profit_wei: int
    max_fee_per_gas: int
    gas_limit: int
    min_profit: int


def decide(opp: Opportunity, strategy: StrategySettings, profit: int, gas_used: int) -> Decision:
    """Pass iff the profit covers the whole gas limit at the fee cap plus the strategy minimum
    (so the calldata's minProfit, at least that, is reachable) and the gas fits the limit.
    `net_profit_wei` is the expected net: profit - budgeted gas x fee cap."""
    backrun = opp.victim is not None
    hops = len(opp.hops)
    cap = fee_cap(opp, strategy)
    net = profit - gas_for_fee(gas_used, backrun, hops) * cap
    limit = gas_limit_for(gas_used, backrun, hops)
    floor = gas_floor(limit, cap, strategy.min_profit)
    min_profit = max(min_profit_for(profit, strategy.min_profit_share), floor)
    if profit <= 0:
        return Decision(False, "no_profit", net, cap, limit, min_profit)
    if limit > strategy.gas_limit:
        return Decision(False, "gas_over_limit", net, cap, limit, min_profit)
    if net < strategy.min_profit or profit < floor:
        return Decision(False, "unprofitable", net, cap, limit, min_profit)
    return Decision(True, "pass", net, cap, limit, min_profit)


def stack_risk(
    alone: SimResultLike, net_profit_wei: int, fee_cap_wei: int, gas_limit: int
) -> str | None:
    """Why a backrun stacked on our earlier trade must not be sent, or None. `alone` is its
    final bytes run without our earlier trades (the state it meets if one of them does not land
    first). Reverting there costs at most its gas (run in one journal, so plus the cold bias,
    never above the gas limit) at the fee cap: that loss must not exceed
    the net the trade makes when the stack lands, so one failed stack costs no more than one
    stack that worked earns."""
    if alone.victim_failed:
        return "a victim fails without our earlier trade"
    if alone.success:
        return None
    loss = min(gas_limit, alone.gas_used + BACKRUN_COLD_BIAS) * fee_cap_wei
    if loss > net_profit_wei:
        return f"a revert without our earlier trade costs {loss} wei > its net {net_profit_wei}"
    return None
