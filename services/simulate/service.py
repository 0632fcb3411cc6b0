"""Simulate: `mev.<chain>.blocks` (ordered, this replica) and `mev.<chain>.opportunities.>`
(shared pull) in; `mev.<chain>.bundles` out.

Blocks keep the warm pyrevm EVM at the head (warm.py). Each opportunity is checked for
staleness, simulated on that EVM (simulator.py), decided, and published as a Bundle (msg id
deterministic from the opportunity) before its ack. Simulation runs inline on the event loop:
pyrevm holds the GIL for its ~0.1-0.3 ms, a thread hop would cost about as much, and one EVM
must not run two bundles at once. `performance.simulation_concurrency` bounds how many
opportunities are in flight (waiting for their block, publishing). A sample of published
bundles is re-run on py-evm in a separate process (reference_checks.py, reference_proc.py:
~35 ms of pure Python that must not hold this process's GIL); a disagreement halts the
strategy. Pending-swap backruns go before block-triggered simulations (priority.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address
from mev_common import metrics, subjects
from mev_common.bus import Envelope
from mev_common.chain.contracts import ChainContracts
from mev_common.chain.rpc_blocks import block_from_rpc
from mev_common.messages import (
    Block,
    Opportunity,
    trigger_kind,
)
from mev_common.runtime import Check, Runtime
from mev_common.stage import Consume, Stage, run_stage

from services.simulate.decision import TakenPools, budget_ms, staleness
from services.simulate.diff_feed import DiffFeed
from services.simulate.latest_mode import LatestMode, drain, fetch_owner
from services.simulate.prefetch import (
    PoolProbe,
    VictimLoads,
    existing,
    prefetch_pool,
    v3_candidates,
)
from services.simulate.prefetch_queue import PrefetchQueue
from services.simulate.priority import PendingFirst
from services.simulate.quarantine import Quarantine
from services.simulate.reference_checks import ReferenceChecks
from services.simulate.reference_proc import ReferenceProcess
from services.simulate.rpc_priority import SimulateCalls
from services.simulate.simulator import Simulator
from services.simulate.stacking import Plan
from services.simulate.victims import VictimTraces
from services.simulate.warm import WarmEvm, read_slots

log = logging.getLogger("mev.simulate")
OWNER_SLOT = 0  # Executor.owner: the bot address is whoever owns the executor
LATENCY_WINDOW = 4096  # exact seen -> published samples kept for /health (the last ones)
SIM_HOPS = ("sim_arrive", "sim_victim", "sim_wait", "sim_run", "sim_publish")  # a backrun's
# a block-triggered bundle's hops apart: its seen is ingest's head (detect's block search is in
# its arrive) and it yields to backruns (priority.py) in its wait
SIM_BLOCK_HOPS = tuple(h.replace("sim_", "sim_block_") for h in SIM_HOPS)
PENDING_FIRST_WAIT_S = 0.05  # at most this a block-triggered simulation yields to backruns
BLOCK_DIFF_WAIT_S = 0.1  # past this a simulation through a V3 pool changed by it reforks


async def main(rt: Runtime) -> None:
    await run_stage(rt, start)


async def start(stage: Stage, contracts: ChainContracts) -> Consume[Opportunity]:
    """The warm EVM forked at the head, pools prefetched in the background, blocks from the
    newest one; then the opportunities."""
    service = SimulateService(stage, contracts)
    await service.start()
    concurrency = stage.settings.performance.simulation_concurrency
    return Consume("simulate", Opportunity, service.on_opportunity, concurrency)


def exact_quantiles(samples: list[float]) -> dict[str, float | int | None]:
    """p50/p95 of seen -> published by nearest rank on the samples themselves (a latency that
    happened, not a histogram interpolation), with their count."""
    ordered = sorted(samples)

    def rank(q: float) -> float | None:
        return round(ordered[max(1, math.ceil(q * len(ordered))) - 1], 3) if ordered else None

    return {"count": len(ordered), "p50": rank(0.5), "p95": rank(0.95)}


@dataclass
class SimulateService(LatestMode, ReferenceChecks, VictimTraces):
    stage: Stage
    contracts: ChainContracts
    counts: dict[str, int] = field(default_factory=dict)
    halted: dict[str, str] = field(default_factory=dict)
    new_block: asyncio.Event = field(default_factory=asyncio.Event)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    # where a published bundle's latency went: seen -> our handler, waiting for its block,
    # the simulation itself (exact samples, /health)
    arrive_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    wait_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    run_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    victims: VictimLoads = field(default_factory=VictimLoads)
    victim_calls: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    taken: TakenPools = field(default_factory=TakenPools)  # pools of this block's bundles
    first: PendingFirst = field(default_factory=PendingFirst)  # backruns before block work

    def __post_init__(self) -> None:
        self.rt = self.stage.rt
        self.rpc = self.stage.rpc
        settings = self.rt.settings
        sim = settings.simulate
        self.latest_only = settings.chain.latest_state_only  # HyperEVM: latest_state.py
        self.warm = WarmEvm(
            fork_url=None if self.latest_only else settings.chain.rpc_endpoints[0].url,
            chain_id=self.rt.chain_id,
            executor=self.contracts.executor,
            block_time_s=settings.chain.block_time_s,
        )
        self.quarantine = Quarantine(
            sim.quarantine_reverts, sim.quarantine_window_s, sim.quarantine_s
        )
        self.warm.diffs = not self.latest_only  # V3 pools patched from block diffs (diff_feed)
        self.prefetches = PrefetchQueue(self.warm)  # pools to load, again after each refork
        self.warm.on_fork = self.prefetches.forked
        # one bucket per endpoint: diffs, then victim traces, reference checks, pool probes
        self.calls = SimulateCalls.on(self.rpc, sim.victim_trace_reserve)
        self.diffs = DiffFeed(self.warm, self.calls.diff)
        self.simulator: Simulator | None = None
        self.reference = ReferenceProcess()  # py-evm in its own process: never our GIL
        self.stage.on_close(self.reference.close)
        self.rt.add_check("simulator", self._simulator_check)
        self.rt.add_check("reference", self._reference_check)

    def _simulator_check(self) -> Check:
        head = self.warm.head
        quarantined = self.quarantine.active(time.monotonic())
        metrics.QUARANTINED.set(len(quarantined))
        return Check(
            self.simulator is not None,
            {
                "head": head.number if head else None,
                "forks": self.warm.forks,
                "last_fork_reason": self.warm.last_refork_reason,
                "patched_blocks": self.warm.patched_blocks,
                "prefetched_pairs": self.warm.prefetched_pairs,
                # pools prefetched again after a refork emptied the EVM (prefetch_queue.py)
                "prefetch_requeued": self.prefetches.requeued,
                "executor_trades": self.warm.executor_trades,
                "block_diffs": self.warm.diffs_applied,
                # slots an older block's diff would have set back (warm.apply_diff)
                "diff_kept": self.warm.diff_kept,
                # victims run (once a head each) and their effects reused (effects.py)
                "victim_runs": self.warm.effects.runs,
                "victim_reused": self.warm.effects.reused,
                "latency_ms": exact_quantiles(list(self.latency_ms)),
                "arrive_ms": exact_quantiles(list(self.arrive_ms)),
                "wait_block_ms": exact_quantiles(list(self.wait_ms)),
                "simulate_ms": exact_quantiles(list(self.run_ms)),
                "results": dict(sorted(self.counts.items())),
                "quarantined": quarantined,
            },
        )

    def _reference_check(self) -> Check:
        # not critical: a halted strategy stops publishing, the service itself is fine
        return Check(not self.halted, self.halted or "agree", critical=False)

    async def start(self) -> None:
        raw = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        sim = self.rt.settings.simulate
        if not self.latest_only:
            self.warm.fork_url = self.rpc.best_url()  # not a dead primary: the one that answered
        self.warm.fork(block_from_rpc(self.rt.chain_id, raw))
        metrics.SIMULATOR_REFORKS.inc()
        evm = self.warm.evm
        assert evm is not None
        if self.latest_only:
            owner = await fetch_owner(self.rpc, self.contracts.executor, OWNER_SLOT)
        else:
            owner = read_slots(evm, self.contracts.executor, OWNER_SLOT)[0]
        bot = "0x" + owner.to_bytes(32, "big")[12:].hex()
        self.simulator = Simulator(
            self.rt.settings,
            self.warm,
            to_checksum_address(bot),
            self.contracts.weth,
            self.quarantine,
        )
        for pair in self.contracts.pairs:
            self.prefetches.want(PoolProbe(pair.address, pair.token0, pair.token1))
        if not self.latest_only and self.contracts.v3_dexes:  # latest-only: see PoolProbe.of
            self.stage.spawn(self.prefetch_v3(), "prefetch-v3")
        self.stage.spawn(self.prefetcher(to_checksum_address(bot)), "prefetch")
        self.stage.spawn(self.diffs.run(), "block-diffs")
        await self.stage.follow_blocks(self.on_block)
        # victims traced as their pending swaps are seen, before detect's opportunity (victims.py)
        await self.listen_pending(sim.early_victim_traces_per_s, self.contracts.routers)
        # endpoint health for best_url(): simulate makes few RPC calls of its own
        self.stage.spawn(self.rpc.monitor(self.rt.stop), "rpc-monitor")

    async def on_block(self, env: Envelope[Block]) -> None:
        forks = self.warm.forks
        # the EVM reads state lazily from one URL: follow a failover, not a latency wobble
        url = self.rpc.best_url(self.warm.fork_url)
        if self.latest_only:
            self.warm.advance(env.message)
            if self.warm.reload_needed:
                self.queue_reload()
        elif url != self.warm.fork_url:
            self.warm.fork_url = url
            self.warm.fork(env.message, "rpc failover")
        else:
            self.warm.advance(env.message)
            self.diffs.on_block()
        if self.warm.forks != forks:
            metrics.SIMULATOR_REFORKS.inc()
        if self.simulator is not None:  # our trades whose victim missed the block stay stacked
            self.simulator.on_block(env.message)
        self.new_block.set()
        self.new_block = asyncio.Event()

    async def prefetch_v3(self) -> None:
        """Queue every V3 pool of the deployment's V3 factories over its tokens (prefetch.py's
        v3_candidates), behind the V2 pairs."""
        candidates = v3_candidates(self.contracts.v3_dexes, self.contracts.tokens)
        try:
            found = await existing(self.rpc.call_batch, candidates)
        except Exception as exc:  # only time rides on it: each is prefetched when first named
            log.warning("V3 pools not listed", extra={"fields": {"error": repr(exc)}})
            return
        for probe in found:
            self.prefetches.want(probe)

    async def prefetcher(self, bot: str) -> None:
        """Load new pools' state into the warm EVM one at a time, off the hot path
        (prefetch.py), and again after a refork (prefetch_queue.py): a simulation then finds
        everything it reads already fetched."""
        queue = self.prefetches.queue
        while True:
            probe = await queue.get()
            if self.latest_only:
                await self.discover([probe, *drain(queue)], bot)
                continue
            try:
                done = await prefetch_pool(self.calls.probe, self.warm, probe, bot)
                metrics.SIMULATOR_PREFETCHES.labels(result="ok" if done else "moved").inc()
            except Exception as exc:  # a prefetch only saves time: its failure costs a cold run
                metrics.SIMULATOR_PREFETCHES.labels(result="error").inc()
                log.warning(
                    "prefetch failed", extra={"fields": {"pair": probe.pair, "error": repr(exc)}}
                )
            finally:
                self.prefetches.done(probe.pair)

    def count(self, strategy: str, result: str) -> None:
        label = result.split(":", 1)[0]
        metrics.SIMULATIONS.labels(strategy=strategy, result=label).inc()
        self.counts[result] = self.counts.get(result, 0) + 1

    def record(self, opp: Opportunity, result: str, plan: Plan | None = None) -> None:
        """Count a result; at DEBUG also log it per opportunity (bench's residual attribution
        reads these lines to say why a block's gap was left), with what ran ahead of a backrun
        (`ahead`, chain order: a reverted trade's cause is then in the log)."""
        self.count(opp.strategy, result)
        if log.isEnabledFor(logging.DEBUG):
            fields = {"opportunity": opp.id, "block": opp.block_number, "result": result}
            if opp.follows is not None:
                fields["follows"] = opp.follows
            if plan is not None:
                fields["ahead"] = list(plan.keys)
            log.debug("simulated", extra={"fields": fields})

    async def on_opportunity(self, env: Envelope[Opportunity]) -> None:
        """A backrun is in flight (priority.PendingFirst) from here to its publish or drop."""
        if env.message.victim is None:
            await self.simulate_one(env)
            return
        self.saw_victim(env.message.victim)
        self.first.enter()
        try:
            await self.simulate_one(env)
        finally:
            self.first.leave()

    async def simulate_one(self, env: Envelope[Opportunity]) -> None:
        opp = env.message
        timeout_ms = budget_ms(opp, self.rt.settings.performance)
        arrived_ns = time.time_ns()
        head = self.warm.head
        early = staleness(
            opp, head.number if head else None, (arrived_ns - env.seen_ns) / 1e6, timeout_ms
        )
        if early is not None and early.reason != "ahead":  # dropped before its victim's trace
            self.drop_stale(opp, early.reason)
            return
        if self.superseded(opp):
            return
        victim_ns, victim_tries = arrived_ns, 0 if opp.victim is not None else 2
        v3_pools, waited = [h.pool for h in opp.hops if h.kind == "v3"], False
        yielded = opp.victim is not None  # a block trigger yields to backruns once
        while True:
            head = self.warm.head
            age_ms = (time.time_ns() - env.seen_ns) / 1e6
            stale = staleness(opp, head.number if head else None, age_ms, timeout_ms)
            if stale is None:
                if opp.victim is not None and victim_tries < 2 and self.victim_needed(opp.victim):
                    victim_tries += 1  # loaded at this head (victims.py), then staleness again
                    if not await self.load_victim(opp.victim):
                        self.record(opp, "victim_reverted")  # it cannot pay at the head
                        metrics.TRANSACTIONS_PROCESSED.labels(stage="simulate").inc()
                        return
                    victim_ns = time.time_ns()
                    continue
                if not waited and self.warm.waits(v3_pools):
                    waited = True  # a V3 pool of ours changed in a block whose diff is coming
                    await self.diffs.wait(v3_pools, BLOCK_DIFF_WAIT_S)
                    continue
                if not yielded and self.first.busy:
                    yielded = True  # then staleness again: no await between it and the run
                    await self.first.wait(PENDING_FIRST_WAIT_S)
                    continue
                break
            if stale.reason != "ahead":
                self.drop_stale(opp, stale.reason)
                return
            # our block stream is behind detect's: wait for the block, within the timeout
            waiter = self.new_block.wait()
            left_s = max(0.001, (timeout_ms - age_ms) / 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout=left_s)
        if opp.strategy in self.halted:
            self.record(opp, "halted")
            return
        if self.superseded(opp):  # again: a backrun may have taken a pool while we waited
            return
        assert self.simulator is not None
        for hop in opp.hops:  # a pool not loaded: this run is cold, the next ones won't be
            self.prefetches.want(PoolProbe.of(hop, v3=not self.latest_only))
        if not self.warm.has_state([h.pool for h in opp.hops]):  # latest-only: not loaded yet
            self.record(opp, "state_not_loaded")
            metrics.TRANSACTIONS_PROCESSED.labels(stage="simulate").inc()
            return
        started_ns = time.time_ns()
        verdict = self.simulator.simulate(opp, time.monotonic(), self.simulator.stacks)
        ran_ns = time.time_ns()
        result = verdict.result
        if result is not None and not result.success and result.revert is not None:
            metrics.SIMULATION_REVERTS.labels(reason=result.revert.name).inc()
        self.record(opp, verdict.reason, verdict.plan)
        bundle = verdict.bundle
        if bundle is not None:
            self.taken.take(opp)  # before the publish's await: a concurrent handler sees it
            await self.rt.bus.publish(
                subjects.bundles(self.rt.chain_id),
                bundle,
                msg_id=bundle.id,
                trace=env.trace,
                seen_ns=env.seen_ns,
            )
            published_ns = time.time_ns()
            latency_s = max(0.0, (published_ns - env.seen_ns) / 1e9)
            metrics.SIMULATION_LATENCY.labels(trigger=trigger_kind(opp.victim)).observe(latency_s)
            hops = (env.seen_ns, arrived_ns, victim_ns, started_ns, ran_ns, published_ns)
            names = SIM_HOPS if opp.victim is not None else SIM_BLOCK_HOPS
            for name, a, b in zip(names, hops, hops[1:], strict=False):
                metrics.HOP_LATENCY.labels(hop=name).observe(max(0.0, (b - a) / 1e9))
            self.latency_ms.append(latency_s * 1e3)
            self.arrive_ms.append((arrived_ns - env.seen_ns) / 1e6)
            self.wait_ms.append((started_ns - arrived_ns) / 1e6)
            self.run_ms.append((ran_ns - started_ns) / 1e6)
            # the reference traces at a block number: a latest-only RPC has no such thing
            sample = self.rt.settings.simulate.reference_sample_rate
            if not self.latest_only and random.random() < sample:
                self.start_reference(bundle, verdict)
        metrics.TRANSACTIONS_PROCESSED.labels(stage="simulate").inc()

    def superseded(self, opp: Opportunity) -> bool:
        """Submit would refuse it: a bundle of ours at this block holds one of its pools (a
        backrun with stacking on is left to the stack plan: stacking.py)."""
        if not self.taken.taken(opp) or (opp.victim and self.rt.settings.simulate.stack_depth):
            return False
        self.record(opp, "superseded")
        metrics.TRANSACTIONS_PROCESSED.labels(stage="simulate").inc()
        return True

    def drop_stale(self, opp: Opportunity, reason: str) -> None:
        metrics.STALE_DROPPED.inc()
        self.record(opp, f"stale_{reason}")
        metrics.TRANSACTIONS_PROCESSED.labels(stage="simulate").inc()
