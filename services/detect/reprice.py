"""Will a booked trade still pay its minProfit behind the pending swaps the chain mines first?

A block trade bids `submit.priority_fee`; a pending swap through one of its pools tipping at
least that much is mined before it, so the trade meets the state that swap leaves. Withdrawing
on every such swap gave up trades that would have landed (docs/DEVNET.md, "Block trades a
pending swap will run ahead of"): a swap in the opposite direction of our hop only improves our
price, a small one in the same direction may leave minProfit within reach. So the trade is
re-priced with detect's exact pool math on the state the crowding swaps leave (the executor
recomputes every hop's amount from the reserves it meets: ExecutorBase), and is given up only
when its profit there falls below a bound on the minProfit simulate writes into its calldata.

The chain's order among the crowders is not certain (equal tips; a swap replaced, queued behind
its sender's nonce, or out of funds never lands), so the trade must pay on every subset of them
in tip order, ties in every order. A crowder detect cannot replay exactly (not decoded, a pool
of its path we do not hold or that is not one of the trade's: its amounts would depend on pools
other swaps may move) raises `Unknown`: the trade is given up, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations, groupby, permutations, product

from mev_common.amm.legs import Leg, V3Leg, path_amounts
from mev_common.amm.v2 import V2Pool
from mev_common.amm.v3 import V3Pool
from mev_common.messages import Opportunity, PendingTx
from mev_common.settings import StrategySettings

Pool = V2Pool | V3Pool
# Beyond these the subsets and orders to check grow fast: the trade is given up instead.
MAX_CROWDERS = 4
MAX_TIED = 3


class Unknown(Exception):
    """A crowding swap whose effect on the trade's pools detect cannot compute exactly."""


# A pending tx replayed on pools (the trade's, by address): the pools after it, or None when
# it reverts there (it then changes nothing). Raises Unknown when it cannot say.
Replay = Callable[[PendingTx, Mapping[str, Pool]], Mapping[str, Pool] | None]


@dataclass(frozen=True)
class Trade:
    """What the executor will run: its hops (pool, token in), input, and `floor`, at least the
    minProfit its calldata will carry; `base` its pools on the state it was proven on."""

    hops: tuple[tuple[str, str], ...]
    amount_in: int
    floor: int
    base: Mapping[str, Pool]

    @property
    def pools(self) -> frozenset[str]:
        return frozenset(pool for pool, _ in self.hops)


def min_profit_bound(opp: Opportunity, strategy: StrategySettings | None) -> int:
    """At least the minProfit simulate's decision writes for `opp` (services/simulate/
    decision.py `decide`): max(floor(profit x share), gas_limit x fee_cap + min_profit), never
    above the profit it measured. Detect's profit is that profit (same state, exact math); the
    gas limit a sent trade has is at most the strategy's, so that stands in for it."""
    profit = opp.expected_profit
    if strategy is None:
        return profit
    cap = min(opp.max_fee_per_gas or strategy.max_gas_price, strategy.max_gas_price)
    share = Fraction(str(strategy.min_profit_share))
    by_share = max(0, profit * share.numerator // share.denominator)
    return min(profit, max(by_share, strategy.gas_limit * cap + strategy.min_profit))


def trade_of(opp: Opportunity, pools: Mapping[str, Pool], floor: int) -> Trade:
    hops = tuple((hop.pool, hop.token_in) for hop in opp.hops)
    return Trade(hops, opp.amount_in, floor, {pool: pools[pool] for pool, _ in hops})


def profit_on(trade: Trade, pools: Mapping[str, Pool]) -> int:
    """The trade's exact gain on `pools` (out minus in; -amount_in when a hop pays nothing)."""
    legs: list[Leg] = []
    for address, token_in in trade.hops:
        pool = pools[address]
        if isinstance(pool, V3Pool):
            legs.append(V3Leg(pool, token_in == pool.token0))
        else:
            legs.append((*pool.reserves(token_in), pool.fee_bps))
    amounts = path_amounts(trade.amount_in, legs)
    out = amounts[-1] if len(amounts) == len(legs) + 1 else 0
    return out - trade.amount_in


def orders(crowders: Sequence[tuple[int, str]]) -> Iterator[list[str]]:
    """Every order the chain may mine a subset of `crowders` (tip, hash) in: by tip, highest
    first, the ones of one tip in every order."""
    for size in range(len(crowders) + 1):
        for subset in combinations(sorted(crowders, key=lambda c: -c[0]), size):
            groups = [[h for _, h in g] for _, g in groupby(subset, key=lambda c: c[0])]
            for arrangement in product(*(permutations(g) for g in groups)):
                yield [h for group in arrangement for h in group]


def survives(
    trade: Trade, crowders: Sequence[tuple[int, str, PendingTx | None]], replay: Replay
) -> bool:
    """Whether the trade pays `floor` on every state the crowders (tip, hash, tx) may leave.
    False when one cannot be replayed, or there are too many to check."""
    if len(crowders) > MAX_CROWDERS:
        return False
    tips = [tip for tip, _, _ in crowders]
    if max((tips.count(t) for t in tips), default=0) > MAX_TIED:
        return False
    txs = {h: tx for _, h, tx in crowders}
    if any(tx is None for tx in txs.values()):
        return False
    seen: dict[tuple[str, ...], Mapping[str, Pool]] = {(): trade.base}  # shared prefixes
    try:
        for order in orders([(tip, h) for tip, h, _ in crowders]):
            state = trade.base
            for i, h in enumerate(order):
                key = tuple(order[: i + 1])
                if key not in seen:
                    tx = txs[h]
                    assert tx is not None
                    seen[key] = replay(tx, state) or state
                state = seen[key]
            if profit_on(trade, state) < trade.floor:
                return False
    except Unknown:
        return False
    return True
