"""Scenario: our win rate against a rival searcher reacting in 50, 10 and 2 ms.

The whole pipeline runs as real processes (`make run`'s strategies and fees) on anvil with 1 s
blocks; the rival (mev_ops.devnet.rival: its own pricing, its own executors, the same bid as
ours, so fee ordering ties and arrival decides) backruns the same seeded flow, one segment of
blocks per latency, one after the other in the same run. The victims are the backrun flow's
(bench/backrun_flow.py: real swaps big enough to backrun, one per user and pool pair a block):
on the seeded devnet flow most swaps leave no backrun worth its gas, which left 2-5 decided
contests a latency in 90 blocks.

Who won is read from the chain. A victim is contested when both sides sent a backrun for it (the
rival's record of what it sent; submit's ledger for ours, each bundle naming its victim). The
winner is the first of the two backruns that succeeded in the victim's block after the victim:
it took the backrun, whatever the other did. Neither, when both reverted or landed elsewhere.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from mev_common.ledger_view import read_trades
from mev_common.messages import Bundle
from mev_common.settings import load_settings
from mev_ops.devnet.rival import Rival, RivalStats

from bench.backrun_flow import run_backrun_flow
from bench.results import Row, ScenarioResult
from bench.scenarios.profit_capture import SERVICES, _make_run_sections, _ready
from bench.stack import Stack, devnet_stack, wait_until
from bench.stats import Summary, exact

KEY = "rival"
TITLE = "Win rate vs a rival searcher"
LATENCIES_MS = (50.0, 10.0, 2.0)
FLOW_SEED = 12
PER_BLOCK = 3  # backrun flow swaps a block (one per WETH pair), the same for every latency
BLOCKS = 60  # per latency
# our backruns' seen -> signed tx (the rival races those; block-triggered trades apart)
SUBMIT_LATENCY = ("submit", "mev_bot_submission_latency_seconds", "pending")


class Landing(NamedTuple):
    block: int
    position: int  # index in the block
    ok: bool


@dataclass
class Tally:
    contested: int = 0
    ours: int = 0
    rival: int = 0
    neither: int = 0

    @property
    def decided(self) -> int:
        return self.ours + self.rival

    def win_rate(self) -> float:
        """Our share of the contests someone won, in %; 0 when none was decided (n=0)."""
        return 100.0 * self.ours / self.decided if self.decided else 0.0


def took(victim: Landing | None, backrun: Landing | None) -> bool:
    """The backrun succeeded in its victim's block, after it."""
    if victim is None or backrun is None:
        return False
    return backrun.ok and backrun.block == victim.block and backrun.position > victim.position


def judge(contests: Iterable[tuple[str, str, str]], landed: dict[str, Landing]) -> Tally:
    """Each (victim, our tx, rival tx): the first of the two that succeeded in the victim's
    block right after it, counted for its side."""
    tally = Tally()
    for victim, ours, theirs in contests:
        tally.contested += 1
        takers = [
            (landed[tx].position, side)
            for tx, side in ((ours, "ours"), (theirs, "rival"))
            if took(landed.get(victim), landed.get(tx))
        ]
        if not takers:
            tally.neither += 1
        elif min(takers)[1] == "ours":
            tally.ours += 1
        else:
            tally.rival += 1
    return tally


def _head(stack: Stack) -> int:
    return int(stack.rpc("eth_blockNumber", []), 16)


def _landings(stack: Stack, first: int, last: int) -> dict[str, Landing]:
    out = {}
    for number in range(first, last + 1):
        for r in stack.rpc("eth_getBlockReceipts", [hex(number)]):
            ok = int(r["status"], 16) == 1
            out[r["transactionHash"].lower()] = Landing(number, int(r["transactionIndex"], 16), ok)
    return out


def _our_backruns(stack: Stack, outcomes: Counter[str]) -> dict[str, str]:
    """victim tx hash -> our backrun tx hash, for every backrun submit sent (ledger); counts
    every backrun bundle submit booked by outcome into `outcomes`."""
    settings = load_settings(stack.config)
    out = {}
    for trade in read_trades(settings.database.path):
        if trade.strategy == "backrun":
            outcomes[f"{trade.status}: {trade.reason}"[:80]] += 1
        if trade.strategy != "backrun" or not trade.tx_hash or not trade.payload:
            continue
        bundle = Bundle.model_validate_json(trade.payload)
        if bundle.victim_tx_hash:
            out[bundle.victim_tx_hash.lower()] = trade.tx_hash.lower()
    return out


@dataclass
class Segment:
    latency_ms: float
    first: int
    last: int
    stats: RivalStats
    ours_ms: list[float]  # our seen -> sent, this segment
    load: float
    flow_sent: int


def _run_segment(stack: Stack, rival: Rival, latency_ms: float, blocks: int) -> Segment:
    rival.latency_ms = latency_ms
    rival.stats = RivalStats()
    stack.latencies()  # only this segment's samples below
    rival.start()
    try:
        report = run_backrun_flow(
            stack.node.rpc_url, stack.deployment, blocks, PER_BLOCK, seed=FLOW_SEED
        )
        last = report.last + 2  # backruns of the last swaps land by then
        wait_until(lambda: _head(stack) >= last, 10)
    finally:
        stats = rival.stop()
    ours = stack.latencies().get(SUBMIT_LATENCY, [])
    first = report.first
    return Segment(latency_ms, first, last, stats, ours, os.getloadavg()[0],
                   len(report.tx_hashes))  # fmt: skip


def _rows(result: ScenarioResult, segment: Segment, tally: Tally) -> None:
    latency = f"{segment.latency_ms:g} ms"
    reactions = [s.reaction_ms for s in segment.stats.shots]
    theirs = exact(reactions) if reactions else None
    ours = exact(segment.ours_ms) if segment.ours_ms else None
    speeds = (
        f"rival seen→sent p50/p95 {theirs.p50:.1f}/{theirs.p95:.1f} ms (n={theirs.samples})"
        if theirs
        else "rival sent nothing"
    ) + (f", ours {ours.p50:.1f}/{ours.p95:.1f} ms (n={ours.samples})" if ours else ", ours none")
    note = (
        f"n={tally.decided} decided of {tally.contested} contested backruns: ours {tally.ours}, "
        f"rival {tally.rival}, neither {tally.neither}; {speeds}; blocks {segment.first}-"
        f"{segment.last}, {segment.flow_sent} swaps; load avg {segment.load:.2f}; per side "
        "(contested or not) in details"
    )
    rate = tally.win_rate()
    result.rows.append(
        Row(f"win rate vs rival at {latency}", "%", Summary(rate, rate, 1, tally.decided),
            "rival's win rate", Summary(100.0 - rate if tally.decided else 0.0,
                                         100.0 - rate if tally.decided else 0.0, 1, tally.decided),
            None, "", note)
    )  # fmt: skip
    result.details[f"rival {latency}"] = {
        "contested": tally.contested, "ours": tally.ours, "rival": tally.rival,
        "neither": tally.neither, "rival_seen_swaps": segment.stats.swaps,
        "rival_priced": segment.stats.priced, "rival_sent": len(segment.stats.shots),
        "rival_busy": segment.stats.busy, "blocks": [segment.first, segment.last],
        "load_avg_1m": segment.load,
    }  # fmt: skip


def run(tiny: bool = False) -> ScenarioResult:
    blocks = 3 if tiny else BLOCKS
    latencies = LATENCIES_MS[1:2] if tiny else LATENCIES_MS  # tiny: the 10 ms rival only
    result = ScenarioResult(KEY, TITLE)
    with devnet_stack(block_time=1, **_make_run_sections()) as stack:
        stack.start(*SERVICES)
        if not wait_until(lambda: all(_ready(stack, s) for s in SERVICES), 60, 0.2):
            return ScenarioResult.unavailable(KEY, TITLE, "the services never became ready")
        # the deployment's seeded price offsets are a one-off gap: let the bot take it first
        settle_from = _head(stack)
        wait_until(lambda: _head(stack) >= settle_from + 1, 10)
        rival = Rival(stack.node.rpc_url, stack.deployment, latencies[0])
        rival.setup()
        segments = [_run_segment(stack, rival, ms, blocks) for ms in latencies]
        wait_until(lambda: _head(stack) >= segments[-1].last + 1, 10)
        outcomes: Counter[str] = Counter()
        ours = _our_backruns(stack, outcomes)
        result.details["ours_backrun_bundles_by_outcome"] = dict(outcomes.most_common(12))
        landed = _landings(stack, segments[0].first, segments[-1].last)
    for segment in segments:
        contests = [
            (shot.victim.lower(), ours[shot.victim.lower()], shot.tx_hash.lower())
            for shot in segment.stats.shots
            if shot.victim.lower() in ours
        ]
        _rows(result, segment, judge(contests, landed))
        mine = [(v, t) for v, t in ours.items() if _within(landed.get(t), segment)]
        theirs = [(s.victim.lower(), s.tx_hash.lower()) for s in segment.stats.shots]
        result.details[f"rival {segment.latency_ms:g} ms"] |= {
            "ours_backruns_mined": len(mine), "ours_took": _took(mine, landed),
            "rival_backruns_mined": sum(_within(landed.get(t), segment) for _, t in theirs),
            "rival_took": _took(theirs, landed),
        }  # fmt: skip
    return result


def _within(landing: Landing | None, segment: Segment) -> bool:
    return landing is not None and segment.first <= landing.block <= segment.last


def _took(backruns: list[tuple[str, str]], landed: dict[str, Landing]) -> int:
    """How many of (victim, backrun) succeeded in their victim's block after it, contested
    or not: what each side took on its own."""
    return sum(took(landed.get(victim), landed.get(tx)) for victim, tx in backruns)
