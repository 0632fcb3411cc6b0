"""A residual block, transaction by transaction: what the oracle's best cycle was after each.

Why: "our backrun landed, gap remained" (bench.attribution) has two very different fixes. Either
a later swap in the block reopened a gap behind our trade (no backrun of it: sent too late,
superseded, crowded), or our one trade closed its own cycle and left a second cycle open on the
pools it moved (one trade per victim). A V2 pair logs `Sync(reserve0, reserve1)` on every swap,
so replaying a block's Sync logs over the previous block's end state gives the exact reserves
after each transaction, and the oracle (bench.oracle, sharing nothing with detect) prices them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from bench.oracle.chain_state import batch_call
from bench.oracle.cycles import Cycle
from bench.oracle.opportunity import best_after_block

SYNC_TOPIC = "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"


class Step(NamedTuple):
    """One mined transaction: who sent it and the V2 reserves it left (only the pairs it moved)."""

    tx_hash: str
    sender: str
    to: str
    synced: dict[str, tuple[int, int]]  # pair address (deployment's spelling) -> reserves after


class Priced(NamedTuple):
    """A transaction of the block and the best cycle (net of gas) the state after it holds."""

    position: int  # in the block
    kind: str  # "ours", "flow", "other"
    pairs: frozenset[str]  # V2 pairs it moved
    best_cycle: str
    best_net_wei: int


def fetch_steps(rpc_url: str, block: int, pairs: Sequence[str]) -> list[Step]:
    """The block's transactions in order, each with the V2 reserves its Sync logs set."""
    by_lower = {p.lower(): p for p in pairs}
    header = batch_call(rpc_url, [("eth_getBlockByNumber", [hex(block), True])])[0]
    txs = header["transactions"]
    receipts = batch_call(rpc_url, [("eth_getTransactionReceipt", [t["hash"]]) for t in txs])
    out = []
    for tx, receipt in zip(txs, receipts, strict=True):
        synced: dict[str, tuple[int, int]] = {}
        for log in receipt["logs"]:
            pair = by_lower.get(log["address"].lower())
            if pair is None or not log["topics"] or log["topics"][0] != SYNC_TOPIC:
                continue
            word = bytes.fromhex(log["data"].removeprefix("0x"))
            synced[pair] = (int.from_bytes(word[0:32], "big"), int.from_bytes(word[32:64], "big"))
        out.append(Step(tx["hash"], tx["from"].lower(), (tx.get("to") or "").lower(), synced))
    return out


def price_steps(
    steps: Sequence[Step],
    start: Mapping[str, tuple[int, int]],
    cycles: Sequence[Cycle],
    gas_price_wei: int,
    flow: set[str],
    executor: str,
) -> list[Priced]:
    """Each step's best cycle on the reserves after it (`start`: the previous block's end)."""
    reserves, ours = dict(start), executor.lower()
    out = []
    for i, step in enumerate(steps):
        reserves.update(step.synced)
        kind = "ours" if step.to == ours else "flow" if step.tx_hash in flow else "other"
        best = best_after_block(0, cycles, reserves, gas_price_wei)
        out.append(Priced(i, kind, frozenset(p.lower() for p in step.synced),
                          best.cycle if best else "", best.net_wei if best else 0))  # fmt: skip
    return out


def gap_behind_ours(priced: Sequence[Priced]) -> str | None:
    """For a block where our trade landed and a gap remained: `further cycle left by our trade`
    when the state right after our last trade in the block already held at least half the
    block's end residual (one trade per victim: the victim's swap opened several cycles and
    ours closed one), `later swap through its pools` otherwise (a swap after ours reopened
    it); None when no trade of ours moved a V2 pair in the block."""
    ours = [p.position for p in priced if p.kind == "ours" and p.pairs]
    if not ours or not priced:
        return None
    left, end = priced[ours[-1]].best_net_wei, priced[-1].best_net_wei
    if 2 * left >= end:
        return "further cycle left by our trade"
    return "later swap through its pools"


def anatomy_row(priced: Sequence[Priced]) -> list[list[Any]]:
    """[index, kind, best cycle after it, its net wei as a string] for a report's details."""
    return [[p.position, p.kind, p.best_cycle, str(p.best_net_wei)] for p in priced]
