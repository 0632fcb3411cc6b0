"""The stage skeleton detect, simulate and submit share: a service builds its handler objects
and hands them to `Stage`; the wiring around them lives here once.

What a stage does, in this order (DESIGN §3):
1. an RPC pool with its health check, the `--adjust-rpc-*` control watcher and the failing-
   endpoint probe running beside it;
2. wait for the chain (eth_chainId; a wrong chain refuses to start) and the deployed contracts;
3. the service's `start`: subscribe to blocks, load state, name its durable input;
4. ready, then consume that input until `rt.stop`;
5. drain: the consume loop settles its in-flight work (acked, or handed back by a stopping
   submit: mev_common.hand_back), subscriptions close, background loops that watch `rt.stop`
   get `DRAIN_S` to finish (the rest are cancelled), resources close last.

Task lifetimes are one `asyncio.TaskGroup`: a background loop that crashes ends the stage (the
runtime logs it, health shows it, the process exits 1) instead of dying unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic

from nats.js.api import ConsumerConfig, DeliverPolicy

from mev_common import subjects
from mev_common.aio import cancel_and_wait
from mev_common.chain.contracts import ChainContracts
from mev_common.chain.rpc_pool import RpcPool, wait_for_chain
from mev_common.control import (
    ControlState,
    OnChange,
    ensure_control_bucket,
    watch_control,
    watch_rpc_controls,
)
from mev_common.envelope import Handler, M
from mev_common.kv import KeyValue
from mev_common.messages import Block
from mev_common.ordered import subscribe_ordered
from mev_common.runtime import Runtime, rpc_check
from mev_common.settings import Settings

log = logging.getLogger("mev.stage")

DRAIN_S = 3.0  # how long a draining background loop may take to finish after stop


@dataclass(frozen=True)
class Consume(Generic[M]):
    """A stage's durable pull input: `handler` gets each `model` message, at most
    `concurrency` at once; returning acks it (see mev_common.bus for the ack policy).
    `batched`: a fetched batch is handled in order in one task (mev_common.consumer)."""

    stage: str
    model: type[M]
    handler: Handler[M]
    concurrency: int
    batched: bool = False


class Stage:
    """One running stage: its RPC pool, background tasks, subscriptions and resources, all
    ended by `open_stage` on the way out. Services never create tasks or touch the client."""

    def __init__(self, rt: Runtime, rpc: RpcPool, tasks: asyncio.TaskGroup) -> None:
        self.rt = rt
        self.rpc = rpc
        self._group = tasks
        self._daemons: set[asyncio.Task[Any]] = set()
        self._draining: set[asyncio.Task[Any]] = set()
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @property
    def settings(self) -> Settings:
        return self.rt.settings

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, *, drain: bool = False
    ) -> asyncio.Task[Any]:
        """Run `coro` beside the stage. At stop a `drain` task (one that watches `rt.stop` and
        must finish its step: release a lease, record a receipt) gets `DRAIN_S` to end; any
        other is cancelled at once."""
        task = self._group.create_task(coro, name=f"{self.rt.service}:{name}")
        running = self._draining if drain else self._daemons
        running.add(task)
        task.add_done_callback(running.discard)  # a long run spawns many short tasks
        return task

    def on_close(self, close: Callable[[], Any]) -> None:
        """Call `close` (sync or async) once every task has ended, last opened first closed."""

        async def run() -> None:
            result = close()
            if asyncio.iscoroutine(result):
                await result

        self._closers.append(run)

    async def wait_for_chain(self) -> ChainContracts | None:
        """The chain answers with the configured id and the contracts are deployed; None if
        stopped first (health shows what is awaited meanwhile)."""
        if not await self.chain_answers():
            return None
        return await self.rt.wait_for_contracts()

    async def chain_answers(self) -> bool:
        """eth_chainId answers the configured id (a wrong one refuses to start), waiting while
        no endpoint answers; False if stopped first."""
        return await wait_for_chain(self.rpc, self.rt.chain_id, self.rt.stop)

    async def follow_blocks(
        self, handler: Handler[Block], *, replay_s: float | None = None
    ) -> None:
        """Every block, in order, on this replica: from `replay_s` seconds back (to cover a
        state load that starts now), else from the newest one."""
        if replay_s is None:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.LAST)
        else:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=replay_s)
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since
            )
        await self._ordered(subjects.blocks(self.rt.chain_id), Block, handler, config)

    async def follow_new(self, subject: str, model: type[M], handler: Handler[M]) -> int:
        """Every new message on a stream subject, in order, on this replica (no acks, no new
        NATS permission: an ordered consumer). Returns the stream's last sequence once the
        reader is subscribed: every message after it is read (some before it may be too)."""
        await self._ordered(
            subject, model, handler, ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
        )
        js = self.rt.bus.js
        info = await js.stream_info(await js.find_stream_name_by_subject(subject))
        return int(info.state.last_seq)

    async def _ordered(
        self, subject: str, model: type[M], handler: Handler[M], config: ConsumerConfig
    ) -> None:
        reader = await subscribe_ordered(
            self.rt.bus,
            subject,
            model,
            handler,
            self.rt.service,
            self.rt.chain_id,
            max_payload_bytes=self.settings.nats.max_payload_bytes,
            config=config,
        )
        self._closers.append(reader.unsubscribe)

    async def listen(
        self, subject: str, model: type[M], handler: Callable[[M], Awaitable[None]]
    ) -> None:
        """A core-NATS subscription (hints, not work: nothing is acked), closed at stop."""
        sub = await self.rt.bus.subscribe_core(
            subject, model, handler, max_payload_bytes=self.settings.nats.max_payload_bytes
        )

        async def unsubscribe() -> None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

        self._closers.append(unsubscribe)

    async def control_bucket(self) -> KeyValue:
        """The control-plane KV bucket (`mev-bot` writes it, services read it)."""
        return await ensure_control_bucket(self.rt.bus.js)

    async def watch_control(
        self, state: ControlState, on_change: OnChange, keys: frozenset[str]
    ) -> None:
        """Apply and acknowledge the control `keys` into `state` until stop, re-watching after
        NATS returns (control.watch_control)."""
        await watch_control(
            self.rt.bus.js,
            self.rt.chain_id,
            state,
            on_change,
            self.rt.stop,
            instance=self.rt.instance,
            acknowledge=keys,
            only=keys,
            generation=lambda: self.rt.bus.generation,
        )

    async def consume(self, consume: Consume[Any]) -> None:
        """Ready; pull `consume`'s input until stop; return once in-flight work is settled."""
        consumer = self.rt.consumer(
            consume.stage, consume.model, consume.handler, consume.concurrency, consume.batched
        )
        self.rt.ready = True
        await consumer.run(self.rt.stop)

    async def _wind_down(self) -> None:
        """Stop: daemons cancelled at once, drain tasks given `DRAIN_S`, then every task still
        running cancelled until it has ended (the TaskGroup's exit waits for all of them)."""
        self.rt.stop.set()
        self.rt.ready = False
        daemons = list(self._daemons)
        for task in daemons:
            task.cancel()
        late: set[asyncio.Task[Any]] = set()
        if self._draining:
            _, late = await asyncio.wait(set(self._draining), timeout=DRAIN_S)
            for task in late:
                log.warning(
                    "task did not drain in time", extra={"fields": {"task": task.get_name()}}
                )
        await cancel_and_wait([*daemons, *late])


@contextlib.asynccontextmanager
async def open_stage(rt: Runtime) -> AsyncIterator[Stage]:
    """Steps 1 and 5 of the module docstring around the caller's body."""
    rpc = RpcPool(rt.settings.chain.rpc_endpoints)
    rt.add_check("rpc", lambda: rpc_check(rpc))
    stage: Stage | None = None
    try:
        async with asyncio.TaskGroup() as tasks:
            stage = Stage(rt, rpc, tasks)
            stage.spawn(
                watch_rpc_controls(rt.bus.js, rt.chain_id, rt.instance, rpc, rt.stop),
                "rpc-controls",
            )
            stage.spawn(rpc.watch_failing(rt.stop), "rpc-probe")
            try:
                yield stage
            finally:
                await stage._wind_down()
    except BaseExceptionGroup as group:  # one failure: raise it as itself (RefuseToStart)
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        if stage is not None:
            for close in reversed(stage._closers):
                try:
                    await close()
                except Exception as exc:
                    log.warning("close failed", extra={"fields": {"error": repr(exc)}})
        await rpc.close()


StartFn = Callable[[Stage, ChainContracts], Awaitable[Consume[Any]]]


async def run_stage(rt: Runtime, start: StartFn) -> None:
    """A consuming stage's whole life: `start(stage, contracts)` subscribes and loads what the
    service needs and returns its input; the skeleton does the rest (module docstring)."""
    async with open_stage(rt) as stage:
        contracts = await stage.wait_for_chain()
        if contracts is None:
            return
        consume = await start(stage, contracts)
        await stage.consume(consume)
