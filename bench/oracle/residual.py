"""What users leave behind: the best WETH cycle left at the end of every block, net of gas.

Why this measure: run the same seeded flow with and without the bot; what is left at the end
of each block is the arbitrage nobody took. Without the bot that is everything the users left
(a gap counts again every block it stays open); with the bot, what the bot did not take. The
ratio with/without says how much of what users leave behind the bot takes, whatever the
oracle's own limits, because both runs are priced by the same code.

A trade on block N's end state lands in block N+1 and pays N+1's base fee (fixed by N's
header under EIP-1559) plus a tip. Each block is priced at two gas prices: base fee plus the
tip it takes to go first in N+1 (the users tip up to 3 gwei and anvil orders by fee), and base
fee alone (a lower bound on the cost, so an upper bound on the residual). Own-balance executor
gas (the cheaper variant) for the cycle's hop count. V2 pairs only (see bench.oracle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from bench.oracle.cycles import Cycle
from bench.oracle.opportunity import Opportunity, best_net, price_cycles


class BlockResidual(NamedTuple):
    block: int
    with_tip: Opportunity | None  # best cycle net of gas at base fee + tip
    base_only: Opportunity | None  # best cycle net of gas at the base fee alone

    @property
    def with_tip_wei(self) -> int:
        return self.with_tip.net_wei if self.with_tip is not None else 0

    @property
    def base_only_wei(self) -> int:
        return self.base_only.net_wei if self.base_only is not None else 0


def residuals(
    cycles: Sequence[Cycle],
    reserves: Mapping[int, Mapping[str, tuple[int, int]]],
    base_fees: Mapping[int, int],
    tip_wei: int,
    blocks: Sequence[int],
) -> list[BlockResidual]:
    """For each of `blocks`: the best cycle on its end state (`reserves[block]`), netted at
    `base_fees[block + 1]` (+ `tip_wei`)."""
    out = []
    for block in blocks:
        priced = price_cycles(cycles, reserves[block])
        base = base_fees[block + 1]
        out.append(BlockResidual(block, best_net(block, priced, base + tip_wei),
                                 best_net(block, priced, base)))  # fmt: skip
    return out


def summed(rows: Sequence[BlockResidual]) -> tuple[int, int]:
    """(with tip, base fee only), summed over blocks."""
    return sum(r.with_tip_wei for r in rows), sum(r.base_only_wei for r in rows)
