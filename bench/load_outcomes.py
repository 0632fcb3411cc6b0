"""Why a scenario-3 load's bundles and trades are fewer than its triggers, in counts: detect's
pending swaps and hits, simulate's results and submit's outcomes by trigger (the backrun
strategy is the pending trigger), and submit's ledger by refusal reason.

Why counts beside the latencies: a row resting on 12 observations says little by itself; its
note says where the rest went (`superseded`: one bundle per pool a block; `stale_timeout`: older
than performance.decision_timeout_ms when simulate got it; `unprofitable`; a refusal in submit).
"""

from __future__ import annotations

import re

from mev_common.ledger_view import read_trades
from mev_common.settings import load_settings
from mev_ops.pipeline_status import total

from bench.scenarios.throughput import DROPPED, detect_counts
from bench.stack import Stack, wait_until

Snapshot = tuple[dict[str, float], dict[str, int]]


def sim_outcomes(stack: Stack) -> dict[str, int]:
    """Detect's drops by reason, simulate's results and submit's bundle outcomes so far, by
    trigger (the backrun strategy is the pending trigger): why bundles or trades are few."""
    out: dict[str, int] = {}
    for service, name, key in (
        ("simulate", "mev_bot_simulations_total", "result"),
        ("submit", "mev_bot_bundles_total", "outcome"),
    ):
        for labels, value in stack.metrics(service).get(name, []):
            trigger = "pending" if labels.get("strategy") == "backrun" else "block"
            tag = f"{service} {trigger} {labels.get(key, '')}"
            out[tag] = out.get(tag, 0) + int(value)
    # detect's own drops (found, not published): a load with few opportunities says why
    for labels, value in stack.metrics("detect").get(DROPPED, []):
        tag = f"detect dropped {labels.get('reason', '')}"
        out[tag] = out.get(tag, 0) + int(value)
    return out


def ledger_refusals(stack: Stack) -> dict[str, int]:
    """Submit's ledger: bundles by `status: reason` (a refusal's reason says which rule), the
    reason's hashes and numbers cut so like refusals count together."""
    out: dict[str, int] = {}
    for trade in read_trades(load_settings(stack.config).database.path):
        reason = re.sub(r"\b\d+\b", "N", re.sub(r"0x[0-9a-fA-F]+", "0x…", trade.reason or ""))[:60]
        key = f"{trade.status}: {reason}" if trade.status != "included" else "included"
        out[key] = out.get(key, 0) + 1
    return out


def outcome_note(before: dict[str, int], after: dict[str, int]) -> str:
    """The outcomes a load added, as a note: `; simulate pending: superseded 162, published
    36; ...`, largest first, zeros left out."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for tag, n in added(before, after).items():
        service, trigger, what = tag.split(" ", 2)
        groups.setdefault(f"{service} {trigger}", []).append((n, what))
    return "".join(
        f"; {group}: " + ", ".join(f"{what} {n:,}" for n, what in sorted(items, reverse=True))
        for group, items in sorted(groups.items())
    )


def load_snapshot(stack: Stack) -> Snapshot:
    """Detect's counts and the outcomes so far (a starved detect's /health: no counts)."""
    try:
        detect = pipeline_counts(stack)
    except OSError:
        detect = {}
    return detect, sim_outcomes(stack)


def load_note(stack: Stack, before: Snapshot) -> str:
    """A load's note: the pending swaps detect took and found a backrun for, then what
    simulate and submit did with the opportunities (outcome_note)."""
    after = load_snapshot(stack)
    note = ""
    if before[0] and after[0]:
        swaps = int(after[0]["processed"] - before[0]["processed"])
        hit = int(after[0]["hit"] - before[0]["hit"])
        note = f"; detect: {swaps:,} pending swaps, {hit:,} with an opportunity"
    return note + outcome_note(before[1], after[1])


def added(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What a load added to each count, largest first."""
    added = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    return dict(sorted(added.items(), key=lambda kv: -kv[1]))


def detect_processed(stack: Stack) -> float:
    """Triggers detect processed; 0 while a starved detect's /health does not answer in time
    (a loaded machine: the wait goes on rather than the scenario failing)."""
    try:
        return pipeline_counts(stack)["processed"]
    except OSError:
        return 0.0


def pipeline_counts(stack: Stack) -> dict[str, float]:
    simulate = stack.metrics("simulate")
    bundles = total(simulate, "mev_bot_messages_published_total", subject="bundles")
    return {**detect_counts(stack, 1), "bundles": bundles}


CONSUMED = "mev_bot_messages_consumed_total"


def _backlog(stack: Stack) -> tuple[float, float]:
    """Opportunities detect published that simulate has not consumed (acked), and bundles
    simulate published that submit has not; upstream read first."""
    published = detect_counts(stack, 1)["opportunities"]
    simulate = stack.metrics("simulate")
    bundles = total(simulate, "mev_bot_messages_published_total", subject="bundles")
    simulated = total(simulate, CONSUMED, stage="simulate")
    submitted = total(stack.metrics("submit"), CONSUMED, stage="submit")
    return published - simulated, bundles - submitted


def wait_settled(stack: Stack, timeout_s: float = 30.0) -> bool:
    """Until simulate has consumed every opportunity detect published and submit every bundle
    simulate published: each is acked once handled (simulated, signed and sent, its latency
    samples written), so a load's counts and samples are complete, with no fixed sleep."""

    def settled() -> bool:
        try:
            return max(_backlog(stack)) <= 0
        except OSError:  # a starved service's endpoint did not answer: ask again
            return False

    return wait_until(settled, timeout_s, 0.05)
