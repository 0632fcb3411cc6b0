"""Submit's two background loops beside the bundle consumer: tracking (the chain head and
receipts, read over RPC; a block message wakes it early) and the P&L gauges (from the ledger)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from mev_common import metrics
from mev_common.aio import sleep_or_stop, wait_any
from mev_common.chain import budget
from mev_common.chain.jsonrpc import RpcError
from mev_common.settings import STRATEGY_NAMES, Settings

from services.submit.pnl import pnl_summary
from services.submit.submitter import Submitter

log = logging.getLogger("mev.submit")

GAUGE_INTERVAL_S = 5.0


async def track_loop(settings: Settings, submitter: Submitter, stop: asyncio.Event) -> None:
    """Head and receipts, both read over RPC, a quarter block apart and at once when a block
    message shows a trade of ours (`submitter.track_wake`, set by block_feed.hint_heads)."""
    interval = max(0.1, settings.chain.block_time_s / 4)
    woken = False  # by a block message, which brought the head already
    while not stop.is_set():
        try:
            # over the call budget, skip a pass: receipts can wait, and a stale head only
            # makes the gate refuse (never price a trade on it)
            if not budget.process_budget().allows(3, keep_free=0.1):
                metrics.RPC_BUDGET_SKIPS.labels(what="submit_track").inc()
            else:
                if not woken:
                    await submitter.fetch_head()
                await submitter.track_once()
        except RpcError as exc:
            metrics.ERRORS.labels(kind="submit_track").inc()
            log.warning("tracking pass failed", extra={"fields": {"error": str(exc)}})
        except Exception as exc:
            metrics.ERRORS.labels(kind="submit_track").inc()
            log.exception("tracking pass failed", extra={"fields": {"error": repr(exc)}})
        # or at once when a block message shows a trade of ours (block_feed.hint_heads): it is
        # settled before the bundles proven on that block reach `routing.route`
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_any(stop, submitter.track_wake), timeout=interval)
        woken = submitter.track_wake.is_set()
        submitter.track_wake.clear()


async def gauge_loop(settings: Settings, weth: str | None, stop: asyncio.Event) -> None:
    """Success rates, profit per hour and gas efficiency over the last hour, from the ledger
    (not its all-time totals: those scan the whole ledger, four times every 5 s)."""
    while not stop.is_set():
        try:
            since = time.time() - 3600
            hour = await asyncio.to_thread(pnl_summary, settings.database.path, since, totals=False)
            metrics.BUNDLE_SUCCESS_RATE.set(hour.success_rate)
            metrics.PROFIT_ETH_PER_HOUR.set(hour.net_profit_wei(weth) / 10**18)
            metrics.GAS_EFFICIENCY_RATIO.set(hour.gas_efficiency(weth))
            for name in STRATEGY_NAMES:
                per = await asyncio.to_thread(
                    pnl_summary, settings.database.path, since, name, totals=False
                )
                metrics.STRATEGY_SUCCESS_RATE.labels(strategy=name).set(per.success_rate)
        except Exception as exc:
            log.warning("P&L gauges failed", extra={"fields": {"error": repr(exc)}})
        await sleep_or_stop(stop, GAUGE_INTERVAL_S)
