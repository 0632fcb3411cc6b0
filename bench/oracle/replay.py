"""The oracle as a searcher of its own: the users' swaps replayed on pools the oracle trades.

Why: summing the best cycle after each real block counts a gap the bot leaves open once per
block it stays open, and misses the gaps our backruns closed inside blocks. Here the oracle
starts from the real state, and for every block replays the users' swaps (their exact inputs,
from the pairs' `Swap` logs, multi-hop inputs chained through its own pools; our executor's
swaps left out), then takes its best single cycle, which changes its pools. Its total is what
a perfect end-of-block searcher would have made facing the same user flow. Approximation: a
user swap that reverted on the real chain is not replayed, and one that succeeded is replayed
even where the oracle's pools would have broken its slippage limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from bench.oracle.chain_state import fetch_logs, words
from bench.oracle.cycles import Cycle
from bench.oracle.opportunity import Opportunity, best_after_block
from bench.oracle.swap_math import Leg, amount_out

SWAP_TOPIC = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"

Pools = dict[str, tuple[int, int]]


class SwapLog(NamedTuple):
    block: int
    tx_hash: str
    log_index: int
    pair: str
    sender: str  # lower-case address that called pair.swap
    amount0_in: int
    amount1_in: int
    amount0_out: int
    amount1_out: int


def fetch_swaps(rpc_url: str, pairs: Sequence[str], first: int, last: int) -> list[SwapLog]:
    """Every Swap of `pairs` in blocks first..last, in chain order."""
    out = []
    for log, pair, data in fetch_logs(rpc_url, pairs, SWAP_TOPIC, first, last):
        in0, in1, out0, out1 = words(data, 4)
        sender = "0x" + log["topics"][1][-40:].lower()
        block, index = int(log["blockNumber"], 16), int(log["logIndex"], 16)
        out.append(
            SwapLog(block, log["transactionHash"], index, pair, sender, in0, in1, out0, out1)
        )
    return sorted(out, key=lambda s: (s.block, s.log_index))


def _swap(pools: Pools, pair: str, zero_in: bool, amount: int, fee_bps: int) -> int:
    """Swap `amount` into a pool of the oracle's own state; returns the output."""
    r0, r1 = pools[pair]
    if zero_in:
        out = amount_out(amount, Leg(r0, r1, fee_bps))
        pools[pair] = (r0 + amount, r1 - out)
    else:
        out = amount_out(amount, Leg(r1, r0, fee_bps))
        pools[pair] = (r0 - out, r1 + amount)
    return out


def _replay_users(
    pools: Pools, swaps: Sequence[SwapLog], executor: str, fees: Mapping[str, int]
) -> None:
    """The block's user swaps in order; a hop fed by the previous hop of the same tx (its real
    input equals that hop's real output) takes the output the oracle's pools gave instead."""
    previous: tuple[str, int, int] | None = None  # tx, real output, oracle's output
    for s in swaps:
        if s.sender == executor:
            continue
        zero_in = s.amount0_in > 0
        amount = s.amount0_in if zero_in else s.amount1_in
        if previous is not None and previous[0] == s.tx_hash and previous[1] == amount:
            amount = previous[2]
        out = _swap(pools, s.pair, zero_in, amount, fees[s.pair])
        previous = (s.tx_hash, s.amount1_out if zero_in else s.amount0_out, out)


def _take(pools: Pools, cycle: Cycle, amount_in: int) -> None:
    amount = amount_in
    for hop in cycle.hops:
        zero_in = hop.token_in.lower() < hop.token_out.lower()
        amount = _swap(pools, hop.pair, zero_in, amount, hop.fee_bps)


def replay_oracle(
    start: Mapping[str, tuple[int, int]],
    swaps: Sequence[SwapLog],
    cycles: Sequence[Cycle],
    first: int,
    last: int,
    executor: str,
    gas_price: Callable[[int], int],
    flash: bool,
) -> dict[int, Opportunity | None]:
    """block -> the oracle's own trade after that block (first..last), `start` being the real
    state at the end of `first`; `gas_price(block)` is what a trade on that state pays."""
    pools: Pools = dict(start)
    fees = {h.pair: h.fee_bps for c in cycles for h in c.hops}
    by_name = {c.name: c for c in cycles}
    by_block: dict[int, list[SwapLog]] = {}
    for s in swaps:
        by_block.setdefault(s.block, []).append(s)
    executor = executor.lower()
    out: dict[int, Opportunity | None] = {}
    for block in range(first, last + 1):
        if block > first:
            _replay_users(pools, by_block.get(block, []), executor, fees)
        best = best_after_block(block, cycles, pools, gas_price(block), flash)
        if best is not None:
            _take(pools, by_name[best.cycle], best.amount_in)
        out[block] = best
    return out
