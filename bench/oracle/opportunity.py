"""The best single arbitrage after one block: every cycle sized by brute force, net of gas.

Why only the best single cycle: cycles share pools, so summing them would count one price gap
several times; non-overlapping cycles could be added, but the best one is simple and never
overstates what one searcher could take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from bench.oracle.cycles import Cycle
from bench.oracle.swap_math import Leg, best_input

# Executor gas per transaction (21,000 intrinsic included) by hop count, as measured on anvil
# and listed in docs/DEVNET.md ("The executor"): own-balance and flash-swap variants.
EXECUTOR_GAS = {
    False: {2: 170_664, 3: 259_602, 4: 348_509},
    True: {2: 180_857, 3: 270_111, 4: 359_331},
}


class Opportunity(NamedTuple):
    block: int  # the state the trade is priced on (end of this block)
    cycle: str
    amount_in: int
    gross_wei: int
    gas_wei: int

    @property
    def net_wei(self) -> int:
        return self.gross_wei - self.gas_wei


def legs_of(cycle: Cycle, reserves: Mapping[str, tuple[int, int]]) -> tuple[Leg, ...]:
    """The cycle's pools oriented along its path (token0 < token1 as the pair sorts them)."""
    legs = []
    for hop in cycle.hops:
        r0, r1 = reserves[hop.pair]
        zero_in = hop.token_in.lower() < hop.token_out.lower()
        legs.append(Leg(r0, r1, hop.fee_bps) if zero_in else Leg(r1, r0, hop.fee_bps))
    return tuple(legs)


class Priced(NamedTuple):
    """One cycle's optimal gross trade on one state, before gas."""

    cycle: Cycle
    amount_in: int
    gross_wei: int


def price_cycles(cycles: Sequence[Cycle], reserves: Mapping[str, tuple[int, int]]) -> list[Priced]:
    """Every cycle that gains on `reserves`, at its exact integer optimum."""
    out = []
    for cycle in cycles:
        amount_in, gross = best_input(legs_of(cycle, reserves))
        if gross > 0:
            out.append(Priced(cycle, amount_in, gross))
    return out


def best_net(
    block: int, priced: Sequence[Priced], gas_price_wei: int, flash: bool = False
) -> Opportunity | None:
    """The priced cycle with the highest profit net of its hop count's executor gas at
    `gas_price_wei`; None if none nets > 0."""
    best: Opportunity | None = None
    for p in priced:
        gas = EXECUTOR_GAS[flash][len(p.cycle.hops)] * gas_price_wei
        found = Opportunity(block, p.cycle.name, p.amount_in, p.gross_wei, gas)
        if found.net_wei > 0 and (best is None or found.net_wei > best.net_wei):
            best = found
    return best


def best_after_block(
    block: int,
    cycles: Sequence[Cycle],
    reserves: Mapping[str, tuple[int, int]],
    gas_price_wei: int,
    flash: bool = False,
) -> Opportunity | None:
    """The cycle with the highest profit net of gas at `gas_price_wei`; None if none nets > 0."""
    return best_net(block, price_cycles(cycles, reserves), gas_price_wei, flash)
