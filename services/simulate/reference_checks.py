"""Simulate's py-evm reference check: a sample of published bundles re-run off the hot path.

The reference (reference_proc.py) is ~35 ms of pure Python in its own process, fed the
prestate the node traces at the bundle's block; a disagreement with pyrevm halts the strategy
(its bundles stop), the service itself goes on. A mixin of SimulateService, kept apart so the
service stays a thin adapter.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from mev_common import metrics
from mev_common.messages import Bundle

from services.simulate.engine import BlockEnvSpec, SimResult, TxSpec
from services.simulate.reference import agree, fetch_bundle_prestate
from services.simulate.simulator import Verdict

if TYPE_CHECKING:
    from mev_common.chain.contracts import ChainContracts
    from mev_common.stage import Stage

    from services.simulate.reference_proc import ReferenceProcess
    from services.simulate.rpc_priority import SimulateCalls
    from services.simulate.warm import WarmEvm

log = logging.getLogger("mev.simulate")


class ReferenceChecks:
    stage: Stage
    contracts: ChainContracts
    calls: SimulateCalls
    warm: WarmEvm
    reference: ReferenceProcess
    background: set[asyncio.Task[Any]]
    halted: dict[str, str]

    def start_reference(self, bundle: Bundle, verdict: Verdict) -> None:
        """Re-run a published bundle on py-evm off the hot path (one at a time is plenty)."""
        if self.background or verdict.tx is None or verdict.result is None or not verdict.plain:
            metrics.REFERENCE_CHECKS.labels(result="skipped").inc()
            return
        env = self.warm.env
        assert env is not None
        task = self.stage.spawn(
            self.check_reference(
                bundle, verdict.tx, verdict.victim, verdict.result, env, verdict.gas_slack
            ),
            "reference",
            drain=True,
        )
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def check_reference(
        self,
        bundle: Bundle,
        tx: TxSpec,
        victim: TxSpec | None,
        hot: SimResult,
        env: BlockEnvSpec,
        gas_slack: int = 0,
    ) -> None:
        try:
            txs = [victim, tx] if victim is not None else [tx]
            prestate = await fetch_bundle_prestate(
                self.calls.reference, txs, bundle.block_number, env
            )
            token = bundle.profit_token or ""
            ref = await self.reference.run(
                prestate, env, tx, token, self.contracts.executor, victim
            )
        except Exception as exc:  # the reference is a check: its failure is not a verdict
            metrics.REFERENCE_CHECKS.labels(result="error").inc()
            log.warning("reference run failed", extra={"fields": {"error": repr(exc)}})
            return
        if agree(hot, ref, gas_slack):
            metrics.REFERENCE_CHECKS.labels(result="agree").inc()
            return
        self.halt(bundle.strategy, f"bundle {bundle.id}: pyrevm {hot} vs py-evm {ref}")

    def halt(self, strategy: str, why: str) -> None:
        metrics.REFERENCE_CHECKS.labels(result="disagree").inc()
        metrics.SIMULATOR_DISAGREEMENTS.labels(strategy=strategy).inc()
        metrics.SIMULATION_HALTED.labels(strategy=strategy).set(1)
        self.halted[strategy] = why[:500]
        log.error("simulators disagree: strategy halted", extra={"fields": {"why": why[:500]}})
