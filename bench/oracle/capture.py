"""Capture accounting: the bot's landed profit per block against the oracle's per block.

Why these windows: the oracle prices the state at the end of block N; a block arbitrage on that
state lands in N+1 at the earliest, and `LAG` blocks is what submit's deadline allows. A backrun
lands in its victim's block, right after the victim, so the gap it closes never shows in any
end-of-block state. For each landed backrun the oracle also prices the state just before it
(`inside`), which adds the gap the backrun went for to the profit on offer, counted once:
what the backrun left is still seen at the end of the block. Gaps that users' own later swaps
closed inside a block are on offer to nobody here and are not counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mev_common.ledger_view import LedgerTrade

from bench.oracle.opportunity import Opportunity

LAG = 2  # blocks after the oracle's block in which a landed trade counts as taking it
BLOCK_ARBITRAGE = ("cyclic_arbitrage", "cross_dex_arbitrage")


@dataclass
class Capture:
    first: int
    last: int
    oracle_wei: int = 0  # the replayed searcher's profit: the capture ratio's denominator
    oracle_end_wei: int = 0  # best cycle after each block, summed
    oracle_inside_wei: int = 0  # best cycle just before each landed backrun, summed
    oracle_blocks: int = 0  # blocks with an opportunity net of gas > 0
    realized_wei: dict[str, int] = field(default_factory=dict)  # strategy -> profit - gas
    landed: Counter[str] = field(default_factory=Counter)  # strategy -> included
    reverted: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)  # reason -> blocks
    over_min_profit: int = 0  # oracle blocks above min_profit (the bot's floor)
    other_token_trades: int = 0  # landed trades whose profit is not in WETH (not summed)
    series: list[tuple[float, float]] = field(default_factory=list)  # block, cumulative ratio
    per_block: list[tuple[int, int, int]] = field(default_factory=list)  # block, oracle, bot

    @property
    def realized_total(self) -> int:
        return sum(self.realized_wei.values())

    def realized_of(self, strategies: Sequence[str]) -> int:
        return sum(v for k, v in self.realized_wei.items() if k in strategies)


def reason_key(reason: str) -> str:
    """A refusal reason with its numbers and hashes blanked, so alike reasons group."""
    text = re.sub(r"0x[0-9a-fA-F]+", "0x…", reason)
    text = re.sub(r"\d[\d_,.]*", "N", text)
    return text[:80]


def _answering(
    landed_by_block: Mapping[int, list[LedgerTrade]], block: int, first: int, last: int
) -> list[LedgerTrade]:
    """The landed trades that answer the oracle's block `block` (see `account`)."""
    upto = block + LAG if block == last else block + 1
    out = []
    for landed_in in range(block, upto + 1):
        for t in landed_by_block.get(landed_in, []):
            shift = 0 if t.strategy == "backrun" else 1
            if landed_in - shift == block or (block == last and landed_in > last):
                out.append(t)
    return out


def _why_missed(trades: Sequence[LedgerTrade]) -> str:
    """Why nothing landed for a block: the bundles priced on it, worst news first."""
    if not trades:
        return "no bundle"
    statuses = {t.status for t in trades}
    if "reverted" in statuses:
        return "reverted"
    if "included" in statuses:  # landed later than LAG blocks
        return "landed too late"
    for status in ("dropped", "replaced"):
        if status in statuses:
            return status
    if None in statuses:
        return "still in flight"
    refused = [t.reason for t in trades if t.status == "not_sent"]
    if refused:
        return "not_sent: " + reason_key(refused[0])
    return ", ".join(sorted(s or "?" for s in statuses))


def account(
    oracle: Mapping[int, Opportunity | None],
    trades: Sequence[LedgerTrade],
    first: int,
    last: int,
    min_profit_wei: int,
    profit_token: str,
    inside: Mapping[str, Opportunity | None] | None = None,
    searcher: Mapping[int, Opportunity | None] | None = None,
) -> Capture:
    """Oracle blocks first..last against the bot's outcomes landed in first+1..last+LAG;
    `inside` maps a landed backrun's bundle id to the oracle's best just before it;
    `searcher` is the replayed oracle's trade per block (bench.oracle.replay), the headline
    denominator; without it, end-of-block plus inside is used."""
    inside = inside or {}
    out = Capture(first, last)
    token = profit_token.lower()
    landed_by_block: dict[int, list[LedgerTrade]] = {}
    priced_on: dict[int, list[LedgerTrade]] = {}
    for t in trades:
        priced_on.setdefault(t.state_block, []).append(t)
        if t.landed_block is None or not first < t.landed_block <= last + LAG:
            continue
        landed_by_block.setdefault(t.landed_block, []).append(t)
        if t.realized_profit and t.profit_token != token:
            out.other_token_trades += 1
        out.realized_wei[t.strategy] = out.realized_wei.get(t.strategy, 0) + t.landed_net(token)
        if t.status == "included":
            out.landed[t.strategy] += 1
        elif t.status == "reverted":
            out.reverted[t.strategy] += 1

    cumulative_oracle, cumulative_bot = 0, 0
    for block in range(first, last + 1):
        opp = oracle.get(block)
        net = opp.net_wei if opp is not None else 0
        out.oracle_end_wei += net
        if net > 0:
            out.oracle_blocks += 1
        # The bot's side of block N: block arbitrage that landed in N+1 and backruns that
        # landed in N itself (the oracle sees their victims only at N's end); the last block
        # also takes the later landings. The oracle's side adds the states before backruns.
        bot, within = 0, 0
        for t in _answering(landed_by_block, block, first, last):
            bot += t.landed_net(token)
            found = inside.get(t.bundle_id)
            within += found.net_wei if found is not None and found.net_wei > 0 else 0
        out.oracle_inside_wei += within
        if searcher is None:
            offered = net + within
        else:
            own = searcher.get(block)
            offered = own.net_wei if own is not None else 0
        cumulative_oracle += offered
        cumulative_bot += bot
        out.per_block.append((block, offered, bot))
        if cumulative_oracle > 0:
            out.series.append((float(block), cumulative_bot / cumulative_oracle))
        if net > min_profit_wei:
            out.over_min_profit += 1
            took = any(
                t.status == "included"
                for b in range(block + 1, block + LAG + 1)
                for t in landed_by_block.get(b, [])
            )
            if not took:
                bundles = priced_on.get(block, []) + priced_on.get(block + 1, [])
                out.missed[_why_missed(bundles)] += 1
    out.oracle_wei = cumulative_oracle
    return out
