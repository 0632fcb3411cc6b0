"""Scenario 6: capture, what users leave behind with the bot running ÷ without it.

The same seeded devnet flow runs twice, each on a fresh devnet (anvil with 1 s blocks, the seed-1
deployment): once alone, once with the whole pipeline running as `make run` runs it (config/
devnet.yaml's strategies, priority fee and flow rate). Before the flow, bench's oracle closes
the deployment's seeded V2 gaps the same way in both runs (bench.oracle.settle), and the flow's
planner starts from that state in both, so both runs send the same swaps (same users, pools,
amounts, limits and tips; only the deadlines, which follow each run's clock, differ); the flow
starts on a block boundary so they fall into blocks alike. Afterwards the oracle (bench/oracle,
sharing no code with detect or mev_common.amm) prices the best WETH cycle of 2-3 V2 pools left
at the end of every flow block, net of gas (bench.oracle.residual). The bot's summed residual
as a fraction of the no-bot one is the capture figure: 0 means it left nothing, 1 nothing taken.
The window is the flow's blocks, the last one included, and ends there in both runs: a
trade on block N's end state lands in N+1, so every block's residual is what no trade in the
block took, and the last block is no different (the backruns of its swaps land in it: in the
2026-12-01 runs our backrun is the 2nd tx of the last block; only a block trade on its end
state would land after the window, as for any block). Measuring one more block would add the
still-open no-bot gaps once more to the divisor and change nothing else, so it is not done;
the last block's share is shown apart.
V3 pools are outside the oracle (it has no V3 math of its own): their gaps are not counted, and
the bot's trades through them count only by how they move the V2 pairs.
With the bot, each block's residual is attributed to a cause (bench.attribution: the
OPPORTUNITIES stream, simulate's per-opportunity DEBUG results, the ledger, the chain); details
`attribution` and `per_block_causes`. With MEV_BENCH_CAPTURE_BLOCK_BUDGET_MS set, the with-bot
run is repeated with simulate's block budget at that value (250: before it had its own).
"""

from __future__ import annotations

import dataclasses
import os
import urllib.error
import urllib.request
from typing import Any, NamedTuple

import yaml
from mev_common.ledger_view import pnl_summary
from mev_common.settings import load_settings
from mev_ops.devnet.flow import FlowReport, run_flow
from mev_ops.devnet.flow_plan import SwapIntent

from bench.attribution import BlockGap, attribute, table, v3_ahead
from bench.attribution_collect import mined_swaps, opportunity_records
from bench.block_anatomy import anatomy_row, fetch_steps, gap_behind_ours, price_steps
from bench.oracle.chain_state import fetch_base_fees, fetch_reserves, fetch_tx_blocks
from bench.oracle.cycles import find_cycles
from bench.oracle.residual import BlockResidual, residuals, summed
from bench.oracle.settle import settle
from bench.pipeline_ready import missing_stages
from bench.results import Row, ScenarioResult
from bench.stack import DEVNET_CONFIG, Stack, devnet_stack, wait_until
from bench.stats import Summary, ratio

KEY = "profit_capture"
TITLE = "Capture: residual with ÷ without the bot"
FLOW_SEED = 6
BLOCK_TIME_S = 1
WEI_PER_ETH = 10**18
SERVICES = ("ingest", "detect", "simulate", "submit")


def _make_run_sections() -> dict[str, Any]:
    """The parts of `make run`'s config that decide what the bot trades and bids."""
    cfg = yaml.safe_load(DEVNET_CONFIG.read_text())
    return {"strategies": cfg["strategies"], "submit": cfg.get("submit", {})}


def _flow_rate() -> float:
    cfg = yaml.safe_load(DEVNET_CONFIG.read_text())
    return float(cfg.get("devnet", {}).get("flow_rate", 4.0))


def _ready(stack: Stack, service: str) -> bool:
    port = yaml.safe_load(stack.config.read_text())["services"][service]["health_port"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _head(stack: Stack) -> int:
    return int(stack.rpc("eth_blockNumber", []), 16)


class FlowRun(NamedTuple):
    """One run of the flow: the oracle's residual per flow block and what the flow did."""

    residual: list[BlockResidual]
    report: FlowReport
    tx_offsets: dict[int, tuple[int, bool]]  # swap index -> (block - first flow block, ok)
    settled: list[str]
    tip_wei: int
    bot: dict[str, Any]  # the ledger's summary (with the bot), else {}
    causes: list[tuple[int, int, str]]  # (block, residual wei, why), with the bot; else []
    anatomy: dict[int, list[list[Any]]]  # residual block -> its txs and the gap after each


# Scenario 6 run again with the bot at this simulate `performance.block_decision_timeout_ms`
# (e.g. 250, the shared budget block opportunities had before their own): before/after side by
# side in one run.
BASELINE_BUDGET_ENV = "MEV_BENCH_CAPTURE_BLOCK_BUDGET_MS"
# ... and with simulate.stack_depth at this value (0: backruns never stack on our own pending
# trades, the behaviour before services/simulate/stacking.py)
BASELINE_STACK_ENV = "MEV_BENCH_CAPTURE_STACK_DEPTH"
# ... and with detect.follow_on off (set to 1: no second backrun of a victim through the pools
# of our first, services/detect/follow_on.py), at the main run's stack depth
BASELINE_FOLLOW_ENV = "MEV_BENCH_CAPTURE_NO_FOLLOW_ON"


def _intent_key(intent: SwapIntent) -> SwapIntent:
    """A swap as the user meant it: everything but the deadline, which follows the clock."""
    return dataclasses.replace(intent, deadline=0)


def flow_run(
    with_bot: bool,
    blocks: int,
    block_budget_ms: int | None = None,
    stack_depth: int | None = None,
    follow_on: bool | None = None,
) -> FlowRun | str:
    """A fresh devnet, settled, then `blocks` blocks of the seeded flow; a str says why not.
    With the bot, simulate logs each opportunity's result (DEBUG) for the attribution;
    `stack_depth` overrides simulate.stack_depth in detect and simulate."""
    with devnet_stack(block_time=BLOCK_TIME_S, **_make_run_sections()) as stack:
        rpc_url, deployment = stack.node.rpc_url, stack.deployment
        settled = settle(rpc_url, deployment, BLOCK_TIME_S)
        plan_block = _head(stack)
        settings = load_settings(stack.config)
        if with_bot:
            sim_env = {"MEV_LOGGING__LEVEL": "DEBUG"}
            if block_budget_ms is not None:
                sim_env["MEV_PERFORMANCE__BLOCK_DECISION_TIMEOUT_MS"] = str(block_budget_ms)
                sim_env["MEV_PERFORMANCE__DECISION_TIMEOUT_MS"] = str(
                    min(block_budget_ms, settings.performance.decision_timeout_ms)
                )
            depth = {} if stack_depth is None else {"MEV_SIMULATE__STACK_DEPTH": str(stack_depth)}
            follow = {} if follow_on is None else {"MEV_DETECT__FOLLOW_ON": str(follow_on).lower()}
            stack.start("ingest")
            stack.start("detect", env={**depth, **follow})
            stack.start("simulate", env={**sim_env, **depth})
            stack.start("submit")
            if not wait_until(lambda: all(_ready(stack, s) for s in SERVICES), 60, 0.2):
                return "the services never became ready"
        report = run_flow(rpc_url, deployment, FLOW_SEED, _flow_rate(), blocks, emit=None,
                          plan_block=plan_block)  # fmt: skip
        first, last = report.blocks[0].number, report.blocks[-1].number
        wait_until(lambda: _head(stack) >= last + 1, 10 * BLOCK_TIME_S)
        pairs = [p["address"] for p in deployment["pairs"]]
        span = list(range(first, last + 1))
        reserves = fetch_reserves(rpc_url, pairs, span)
        base_fees = fetch_base_fees(rpc_url, [b + 1 for b in span])
        cycles = find_cycles(deployment["pairs"], deployment["weth"], max_hops=3)
        tip = settings.submit.priority_fee
        mined = fetch_tx_blocks(rpc_url, report.tx_hashes)
        offsets = {
            intent.index: (mined[h][0] - first, mined[h][1])
            for intent, h in zip(report.intents, report.tx_hashes, strict=True)
            if h in mined
        }
        bot: dict[str, Any] = {}
        if with_bot:
            ledger = settings.database.path
            wait_until(lambda: pnl_summary(ledger).in_flight == 0, 5 * BLOCK_TIME_S)
            pnl = pnl_summary(ledger)
            simulations = stack.metrics("simulate").get("mev_bot_simulations_total", [])
            results: dict[str, int] = {}
            for labels, value in simulations:
                results[labels["result"]] = results.get(labels["result"], 0) + int(value)
            bot = {"outcomes": pnl.outcomes, "gas_spent_wei": pnl.gas_spent_wei,
                   "net_profit_wei": pnl.net_profit_wei(deployment["weth"]),
                   "simulations": results}  # fmt: skip
        rows = residuals(cycles, reserves, base_fees, tip, span)
        causes: list[tuple[int, int, str]] = []
        anatomy: dict[int, list[list[Any]]] = {}
        if with_bot:
            causes = _attribute(stack, settings, rows, cycles, report, mined)
            causes, anatomy = _anatomy(rpc_url, deployment, causes, cycles, base_fees,
                                       tip, set(report.tx_hashes))  # fmt: skip
    return FlowRun(rows, report, offsets, settled, tip, bot, causes, anatomy)


def _anatomy(rpc_url: str, deployment: dict[str, Any], causes: Causes,
             cycles: Any, base_fees: dict[int, int], tip: int,
             flow: set[str]) -> tuple[Causes, dict[int, list[list[Any]]]]:  # fmt: skip
    """Each residual block tx by tx (bench.block_anatomy); a `landed, gap remained` cause
    says whether a later swap reopened the gap or our trade left a further cycle."""
    pairs = [p["address"] for p in deployment["pairs"]]
    executor = deployment["executor"]["address"]
    out_causes, anatomy = [], {}
    for block, wei, why in causes:
        start = fetch_reserves(rpc_url, pairs, [block - 1])[block - 1]
        priced = price_steps(fetch_steps(rpc_url, block, pairs), start, cycles,
                             base_fees[block + 1] + tip, flow, executor)  # fmt: skip
        anatomy[block] = anatomy_row(priced)
        if priced and priced[-1].best_net_wei != wei:  # the replay must end where the block did
            why = f"{why} (anatomy off: its end {priced[-1].best_net_wei} wei)"
        if "landed, gap remained" in why:
            behind = gap_behind_ours(priced)
            why = why.replace("gap remained", f"gap remained: {behind}") if behind else why
        out_causes.append((block, wei, why))
    return out_causes, anatomy


Causes = list[tuple[int, int, str]]


def _attribute(stack: Stack, settings: Any, rows: list[BlockResidual], cycles: Any,
               report: FlowReport, mined: dict[str, tuple[int, bool]]) -> Causes:  # fmt: skip
    """Why each block's residual was left (bench.attribution), from the run's own records."""
    pools = {c.name: frozenset(h.pair.lower() for h in c.hops) for c in cycles}
    gaps = [
        BlockGap(r.block, r.with_tip_wei, pools[r.with_tip.cycle] if r.with_tip else frozenset())
        for r in rows
    ]
    opps = opportunity_records(stack.nats.url, stack.base / "simulate.log",
                               settings.database.path)  # fmt: skip
    blocks = v3_ahead(mined_swaps(report.intents, report.tx_hashes, mined))
    min_profit = settings.strategies.cyclic_arbitrage.min_profit
    return attribute(gaps, opps, min_profit, blocks)


def _eth(wei: int) -> float:
    return wei / WEI_PER_ETH


def one(value: float) -> Summary:
    """A value measured once (one flow per run): p50 == p95."""
    return Summary(value, value, 1)


def _rows(alone: FlowRun, bot: FlowRun, result: ScenarioResult) -> None:
    n = len(bot.residual)
    tip_alone, base_alone = summed(alone.residual)
    tip_bot, base_bot = summed(bot.residual)
    same = sum(
        _intent_key(a) == _intent_key(b)
        for a, b in zip(alone.report.intents, bot.report.intents, strict=False)
    )
    sent = len(alone.report.intents), len(bot.report.intents)
    same_block = sum(
        bot.tx_offsets.get(i, (None,))[0] == off for i, (off, _) in alone.tx_offsets.items()
    )
    gap_blocks = (
        sum(r.with_tip_wei > 0 for r in alone.residual),
        sum(r.with_tip_wei > 0 for r in bot.residual),
    )
    # the last block weighs as much as any (see the docstring); shown apart because one large
    # swap in it is a large share of a short run's residual
    last_alone, last_bot = alone.residual[-1].with_tip_wei, bot.residual[-1].with_tip_wei
    but_last = ratio(tip_bot - last_bot, tip_alone - last_alone)
    common = (
        f"{n} blocks each run (n={n} end-of-block states a run), flow seed {FLOW_SEED}; best "
        "WETH cycle of 2-3 V2 pools left at each block's end, summed; V3 pools not priced; "
        "the window ends at the flow's last block in both runs (its swaps' backruns land in it)"
    )
    result.rows.append(
        Row("residual with ÷ without bot, net of gas at base fee + tip", "ETH", one(_eth(tip_bot)),
            "without the bot", one(_eth(tip_alone)), ratio(tip_bot, tip_alone), "with/without",
            f"{common}; gas: own-balance executor gas for the hop count at the next block's base "
            f"fee + submit.priority_fee ({bot.tip_wei / 1e9:g} gwei, what going first in the "
            f"next block takes); blocks with a residual: {gap_blocks[1]} with, "
            f"{gap_blocks[0]} without; the last block alone: {_eth(last_bot):.4f} with, "
            f"{_eth(last_alone):.4f} ETH without (ratio over the others "
            f"{but_last if but_last is None else round(but_last, 4)})")
    )  # fmt: skip
    result.rows.append(
        Row("residual with ÷ without bot, net of base fee only", "ETH", one(_eth(base_bot)),
            "without the bot", one(_eth(base_alone)), ratio(base_bot, base_alone),
            "with/without", "the same states at the next block's base fee alone (no tip): the "
            "cost's lower bound, so the residual's upper bound")
    )  # fmt: skip
    reverted = (
        sum(not ok for _, ok in alone.tx_offsets.values()),
        sum(not ok for _, ok in bot.tx_offsets.values()),
    )
    result.rows.append(
        Row("flow swaps identical in both runs", "count", one(float(same)), "sent in both",
            one(float(min(sent))), ratio(same, min(sent)), "same/sent",
            f"sent {sent[0]} without, {sent[1]} with the bot (the flow sends by the clock "
            f"until {n} blocks have passed, so the tail may differ by a swap or two); in the "
            "same block (relative to "
            f"the flow's first) {same_block}; reverted (slippage, deadline) {reverted[0]} "
            f"without, {reverted[1]} with the bot")
    )  # fmt: skip
    net = int(bot.bot.get("net_profit_wei", 0))
    result.rows.append(
        Row("bot realized profit (net of gas)", "ETH", one(_eth(net)), "residual taken",
            one(_eth(tip_alone - tip_bot)), None, "",
            "ledger: every landed trade of the with-bot run (settle, start-up and flow), "
            f"outcomes {bot.bot.get('outcomes', {})}; simulate's results "
            f"{bot.bot.get('simulations', {})}; 'residual taken' is the summed "
            "residual it removed, not a profit (a gap open for k blocks counts k times)")
    )  # fmt: skip
    for name, run in (("without bot", alone), ("with bot", bot)):
        total = 0
        points = []
        for i, r in enumerate(run.residual):
            total += r.with_tip_wei
            points.append((float(i), _eth(total)))
        result.series[f"cumulative residual {name} (ETH)"] = points
    result.details.update(
        {
            "blocks": n,
            "residual_with_tip_wei": {"without": str(tip_alone), "with": str(tip_bot)},
            "residual_base_fee_only_wei": {"without": str(base_alone), "with": str(base_bot)},
            "ratio_without_last_block": but_last,
            "per_block_with_tip_wei": [
                [i, str(a.with_tip_wei), str(b.with_tip_wei)]
                for i, (a, b) in enumerate(zip(alone.residual, bot.residual, strict=False))
            ],
            "best_cycles_with_bot": [
                [r.block, r.with_tip.cycle, str(r.with_tip.net_wei)]
                for r in bot.residual
                if r.with_tip is not None
            ][:40],
            "settled": alone.settled,
            "same_swaps": same,
            "sent": list(sent),
            "same_block": same_block,
            "reverted": list(reverted),
            "rejected": [len(alone.report.rejected), len(bot.report.rejected)],
            "bot_ledger": {k: str(v) if isinstance(v, int) else v for k, v in bot.bot.items()},
        }
    )


def _causes(rows: list[tuple[int, int, str]]) -> list[list[object]]:
    """The attribution table: [cause, blocks, ETH], largest first."""
    return [[why, n, round(_eth(wei), 6)] for why, n, wei in table(rows)]


def _compare(alone: FlowRun, before: FlowRun, setting: str, result: ScenarioResult) -> None:
    """The same flow with the bot at `setting` (the old behaviour)."""
    tip_alone, _ = summed(alone.residual)
    tip_before, _ = summed(before.residual)
    result.rows.append(
        Row(f"residual with bot at {setting} (before)", "ETH",
            one(_eth(tip_before)), "without the bot", one(_eth(tip_alone)),
            ratio(tip_before, tip_alone), "with/without",
            f"the same flow and no-bot run; causes {_causes(before.causes)}")
    )  # fmt: skip
    key = {"simulate.stack_depth": "_stack", "detect.follow_on": "_follow"}.get(
        setting.split("=")[0], ""
    )
    result.details[f"attribution_before{key}"] = _causes(before.causes)
    result.details[f"per_block_causes_before{key}"] = [[b, str(w), c] for b, w, c in before.causes]
    result.details[f"per_block_anatomy_before{key}"] = {
        str(b): a for b, a in before.anatomy.items()
    }
    result.details[f"bot_ledger_before{key}"] = {
        k: str(v) if isinstance(v, int) else v for k, v in before.bot.items()
    }


def run(tiny: bool = False) -> ScenarioResult:
    missing = missing_stages()
    if missing:
        return ScenarioResult.unavailable(KEY, TITLE, missing)
    blocks = 6 if tiny else 90
    alone = flow_run(False, blocks)
    if isinstance(alone, str):
        return ScenarioResult.unavailable(KEY, TITLE, alone)
    with_bot = flow_run(True, blocks)
    if isinstance(with_bot, str):
        return ScenarioResult.unavailable(KEY, TITLE, with_bot)
    result = ScenarioResult(KEY, TITLE)
    _rows(alone, with_bot, result)
    result.details["attribution"] = _causes(with_bot.causes)
    result.details["per_block_causes"] = [[b, str(w), c] for b, w, c in with_bot.causes]
    result.details["per_block_anatomy"] = {str(b): a for b, a in with_bot.anatomy.items()}
    depth = os.environ.get(BASELINE_STACK_ENV)
    if depth:
        before = flow_run(True, blocks, stack_depth=int(depth))
        if not isinstance(before, str):
            _compare(alone, before, f"simulate.stack_depth={depth}", result)
    if os.environ.get(BASELINE_FOLLOW_ENV):
        before = flow_run(True, blocks, follow_on=False)
        if not isinstance(before, str):
            _compare(alone, before, "detect.follow_on=false", result)
    budget = os.environ.get(BASELINE_BUDGET_ENV)
    if budget:
        before = flow_run(True, blocks, int(budget))
        if not isinstance(before, str):
            _compare(alone, before, f"block_decision_timeout_ms={budget}", result)
    return result
