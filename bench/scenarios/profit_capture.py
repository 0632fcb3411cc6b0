"""Scenario 6: profit capture, realized ÷ oracle over a seeded devnet flow with the bot running.

The whole pipeline runs as real processes (as `make run` does, with config/devnet.yaml's
strategies, priority fee and flow rate) on anvil with 1 s blocks while the seeded user flow
trades. Afterwards bench's oracle (bench/oracle, its own code path) reads every pair's reserves
at the end of each flow block, sizes every 2- and 3-pool cycle from WETH by brute force, nets
the executor's gas at the next block's base fee plus the configured priority fee, and keeps the
best single cycle per block. The bot's side comes from submit's ledger: profit minus gas of
what landed in the following blocks.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from mev_common.devnet.flow import run_flow
from mev_common.settings import Settings, load_settings

from bench.oracle.capture import BLOCK_ARBITRAGE, LAG, Capture, account
from bench.oracle.chain_state import fetch_base_fees, fetch_reserves
from bench.oracle.cycles import find_cycles
from bench.oracle.ledger_view import read_trades
from bench.oracle.opportunity import Opportunity, best_after_block
from bench.pipeline_ready import missing_stages
from bench.results import Row, ScenarioResult
from bench.stack import Stack, devnet_stack, wait_until
from bench.stats import Summary, ratio
from services.submit.pnl import pnl_summary

KEY = "profit_capture"
TITLE = "Profit capture vs oracle"
FLOW_SEED = 6
DEVNET_CONFIG = Path(__file__).resolve().parents[2] / "config" / "devnet.yaml"
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


def _oracle(
    stack: Stack, settings: Settings, first: int, last: int
) -> dict[int, Opportunity | None]:
    """Best cycle net of gas after each block first..last, from exact historical state."""
    deployment = stack.deployment
    cycles = find_cycles(deployment["pairs"], deployment["weth"], max_hops=3)
    pairs = [p["address"] for p in deployment["pairs"]]
    blocks = list(range(first, last + 1))
    reserves = fetch_reserves(stack.node.rpc_url, pairs, blocks)
    # A trade on block N's state pays block N+1's base fee (known once N+1 is mined).
    base_fees = fetch_base_fees(stack.node.rpc_url, [b + 1 for b in blocks])
    priority = settings.submit.priority_fee
    return {
        b: best_after_block(
            b, cycles, reserves[b], base_fees[b + 1] + priority, settings.simulate.flash
        )
        for b in blocks
    }


def _eth(wei: int) -> float:
    return wei / WEI_PER_ETH


def one(value: float) -> Summary:
    """A value measured once (one flow per invocation): p50 == p95."""
    return Summary(value, value, 1)


def _rows(cap: Capture, result: ScenarioResult, settings: Settings) -> None:
    oracle_eth = _eth(cap.oracle_wei)
    arb = cap.realized_of(BLOCK_ARBITRAGE)
    backrun = cap.realized_of(("backrun",))
    landed, reverted = sum(cap.landed.values()), sum(cap.reverted.values())
    missed = sum(cap.missed.values())
    blocks = cap.last - cap.first + 1
    note = (
        f"{blocks} blocks; oracle = best single WETH cycle (2-3 pools, brute force, net of gas "
        "at next base fee + priority fee) after each block, summed; an opportunity left open "
        "counts again each block. Backruns land inside the victim's block, before the oracle's "
        "end-of-block state, so their profit is in ours but never in the oracle's"
    )
    result.rows.append(
        Row("realized ÷ oracle profit", "ETH", one(_eth(cap.realized_total)), "oracle",
            one(oracle_eth), ratio(cap.realized_total, cap.oracle_wei), "realized/oracle", note)
    )  # fmt: skip
    result.rows.append(
        Row("block arbitrage only ÷ oracle", "ETH", one(_eth(arb)), "oracle", one(oracle_eth),
            ratio(arb, cap.oracle_wei), "arbitrage/oracle",
            f"backruns realized {_eth(backrun):.5f} ETH apart")
    )  # fmt: skip
    result.rows.append(
        Row("landed / reverted / missed", "count", one(float(landed)), "oracle blocks > min_profit",
            one(float(cap.over_min_profit)), ratio(missed, cap.over_min_profit), "missed/offered",
            f"reverted {reverted}; missed = no landed trade within {LAG} blocks: "
            + ", ".join(f"{k} {v}" for k, v in cap.missed.most_common(4)))
    )  # fmt: skip
    result.series["realized ÷ oracle"] = cap.series
    result.details.update(
        {
            "first_block": cap.first,
            "last_block": cap.last,
            "oracle_wei": str(cap.oracle_wei),
            "oracle_blocks_with_profit": cap.oracle_blocks,
            "oracle_blocks_over_min_profit": cap.over_min_profit,
            "min_profit_wei": str(settings.strategies.cyclic_arbitrage.min_profit),
            "realized_wei_by_strategy": {k: str(v) for k, v in cap.realized_wei.items()},
            "landed_by_strategy": dict(cap.landed),
            "reverted_by_strategy": dict(cap.reverted),
            "missed_reasons": dict(cap.missed),
            "other_token_trades": cap.other_token_trades,
        }
    )


def run(tiny: bool = False) -> ScenarioResult:
    missing = missing_stages()
    if missing:
        return ScenarioResult.unavailable(KEY, TITLE, missing)
    blocks = 6 if tiny else 90
    result = ScenarioResult(KEY, TITLE)
    with devnet_stack(block_time=1, **_make_run_sections()) as stack:
        stack.start(*SERVICES)
        settings = load_settings(stack.config)
        if not wait_until(lambda: all(_ready(stack, s) for s in SERVICES), 60, 0.2):
            return ScenarioResult.unavailable(KEY, TITLE, "the services never became ready")
        # The deployment's seeded price offsets are a one-off gap: let the bot take it first.
        settle_from = _head(stack)
        wait_until(lambda: _head(stack) >= settle_from + 1, 10)
        report = run_flow(stack.node.rpc_url, stack.deployment, FLOW_SEED, _flow_rate(),
                          blocks, emit=None)  # fmt: skip
        first, last = report.blocks[0].number - 1, report.blocks[-1].number
        ledger = settings.database.path
        wait_until(
            lambda: _head(stack) >= last + LAG + 1 and pnl_summary(ledger).in_flight == 0, 15
        )
        oracle = _oracle(stack, settings, first, last)
        trades = read_trades(ledger)
        pnl = pnl_summary(ledger)
    weth = stack.deployment["weth"]
    cap = account(
        oracle, trades, first, last, settings.strategies.cyclic_arbitrage.min_profit, weth
    )
    _rows(cap, result, settings)
    result.details["ledger_all_time"] = {
        "outcomes": pnl.outcomes,
        "net_profit_wei": str(pnl.net_profit_wei(weth)),
        "gas_spent_wei": str(pnl.gas_spent_wei),
    }
    result.details["flow"] = {"sent": len(report.tx_hashes), "mined": report.mined,
                              "reverted": report.reverted}  # fmt: skip
    return result
