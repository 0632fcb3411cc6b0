"""The py-evm reference check in its own process, so it never holds simulate's GIL.

Why: py-evm takes ~35 ms a bundle in pure Python. In a thread of the simulate process it held
the GIL for that long, and every opportunity arriving meanwhile waited for it (seen ->
simulated p95 went from a few ms to tens). A one-worker process pool, started with `spawn`
(forking a process that runs threads and an event loop is unsafe) and niced so the hot-path
processes keep the CPU first, runs the same `run_reference` on the same picklable inputs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from mev_common.parent_watch import exit_with_parent

from services.simulate.engine import BlockEnvSpec, SimResult, TxSpec
from services.simulate.reference import Prestate, run_reference

NICE = 10  # below the services on a shared machine: a sample may wait, a trade may not


def _init_worker() -> None:
    """Niced, and gone once simulate is (however it ended: mev_common.parent_watch)."""
    os.nice(NICE)
    exit_with_parent()


class ReferenceProcess:
    """One py-evm worker process, started on the first sample and reused."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def run(
        self,
        prestate: Prestate,
        env: BlockEnvSpec,
        tx: TxSpec,
        profit_token: str,
        beneficiary: str,
        victim: TxSpec | None = None,
    ) -> SimResult:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, run_reference, prestate, env, tx, profit_token, beneficiary, victim
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
