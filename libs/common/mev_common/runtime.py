"""The lifecycle every service shares: logs, metrics port, health app, NATS, graceful stop.

A service provides one coroutine, `main(rt)`, that runs its consume loops until `rt.stop` is
set and returns once its in-flight work is acked (or handed back: submit returns the bundles
not yet through its gate, unsigned, for the next submit). The runtime owns everything around it:
SIGTERM/SIGINT set `rt.stop`; the process then drains NATS and exits 0 within
`services.shutdown_timeout_s` (1 if it had to abandon work). `/health` is 200 while the main
task runs and NATS is connected, 503 otherwise; `/ready` is 200 once the service says so.
Log formats live in `logs`, the control-KV heartbeat and shutdown watch in `heartbeat`, the
HTTP app and status gauges in `health_server`; the stage skeleton services build on in `stage`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from mev_common import metrics
from mev_common.aio import cancel_and_wait, logged, until_stopped, wait_any
from mev_common.bus import Bus, Handler, M
from mev_common.chain import budget
from mev_common.chain.contracts import ChainContracts, ContractsError, load_contracts
from mev_common.consumer import PullConsumer
from mev_common.control import ensure_control_bucket
from mev_common.gc_watch import settle_heap, watch_gc
from mev_common.health_server import health_server, status_loop
from mev_common.heartbeat import (
    heartbeat_clear,
    heartbeat_loop,
    service_version,
    shutdown_watch,
)
from mev_common.listen import PortInUse, open_ports
from mev_common.logs import JsonFormatter as JsonFormatter
from mev_common.logs import LastError, setup_logging
from mev_common.nats_auth import NatsAuthError, connect_options
from mev_common.refusal import RefuseToStart as RefuseToStart
from mev_common.settings import ConfigError, ServicePorts, Settings, load_settings
from mev_common.stall import StallWatch
from mev_common.stream_decl import cluster_settling
from mev_common.subjects import consumer_specs, stream_specs

log = logging.getLogger("mev.runtime")


@dataclass
class Check:
    """One named health check. A failing `critical` check makes /health 503."""

    ok: bool
    detail: Any = ""
    critical: bool = True


CheckFn = Callable[[], Check]


class _HasRpcHealth(Protocol):
    def all_down_reason(self) -> str | None: ...
    def health(self) -> dict[str, Any]: ...


def rpc_check(pool: _HasRpcHealth) -> Check:
    """The `rpc` health check: critical (503) once every endpoint is down, naming them."""
    down = pool.all_down_reason()
    return Check(down is None, down or pool.health())


@dataclass
class Runtime:
    """What a service's `main` gets: settings, bus, stop signal, health registration."""

    service: str
    settings: Settings
    bus: Bus
    instance: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ready: bool = False
    started_at: float = field(default_factory=time.time)
    checks: dict[str, CheckFn] = field(default_factory=dict)
    consumers: dict[str, PullConsumer[Any]] = field(default_factory=dict)

    @property
    def chain_id(self) -> int:
        return self.settings.chain.chain_id

    def add_check(self, name: str, fn: CheckFn) -> None:
        self.checks[name] = fn

    def health(self) -> tuple[bool, dict[str, Any]]:
        results: dict[str, Any] = {}
        healthy = True
        for name, fn in self.checks.items():
            try:
                check = fn()
            except Exception as exc:  # a broken check is a failed check, not a crashed endpoint
                check = Check(False, f"check raised {exc!r}")
            results[name] = {"ok": check.ok, "detail": check.detail, "critical": check.critical}
            healthy = healthy and (check.ok or not check.critical)
        return healthy, results

    def consumer(
        self,
        stage: str,
        model: type[M],
        handler: Handler[M],
        concurrency: int,
        batched: bool = False,
    ) -> PullConsumer[M]:
        """This stage's durable pull consumer, with the NATS limits from settings; its last
        error is shown in health (not critical: the consume loop retries)."""
        nats = self.settings.nats
        consumer = PullConsumer(
            bus=self.bus,
            spec=consumer_specs(self.settings)[stage],
            model=model,
            handler=handler,
            stage=stage,
            chain_id=self.chain_id,
            concurrency=concurrency,
            batched=batched,
            max_deliver=nats.max_deliver,
            ack_wait_s=nats.ack_wait_s,
            nak_delay_s=nats.nak_delay_s,
            max_payload_bytes=nats.max_payload_bytes,
            stall=StallWatch(nats.consumer_stall_s),
        )
        self.consumers[stage] = consumer
        self.add_check("consumer", lambda: Check(True, consumer.last_error or "ok", False))
        self.add_check("consumer_stalled", lambda: _stall_check(consumer))
        return consumer

    async def wait_for_contracts(self) -> ChainContracts | None:
        """The devnet writes its deployment at `devnet up`: wait for it rather than crash
        (shown in health meanwhile). None if the service is stopped first."""
        last = ""
        while not self.stop.is_set():
            try:
                contracts = load_contracts(self.settings)
                detail = f"executor {contracts.executor}"
                self.add_check("contracts", partial(Check, True, detail))
                return contracts
            except ContractsError as exc:
                if str(exc) != last:
                    log.warning(
                        "contracts not available yet", extra={"fields": {"error": str(exc)}}
                    )
                    last = str(exc)
                self.add_check("contracts", partial(Check, False, str(exc), critical=False))
            with contextlib.suppress(TimeoutError):  # a stat: cheap, and start waits on it
                await asyncio.wait_for(self.stop.wait(), timeout=0.25)
        return None


def ports_for(settings: Settings, service: str) -> ServicePorts:
    """This instance's ports: the configured ones plus MEV_PORT_OFFSET (replicas on one host)."""
    base: ServicePorts = getattr(settings.services, service)
    offset = int(os.environ.get("MEV_PORT_OFFSET", "0") or 0)
    return ServicePorts(
        health_port=base.health_port + offset,
        metrics_port=base.metrics_port + offset,
        replicas=base.replicas,
    )


ServiceMain = Callable[[Runtime], Coroutine[Any, Any, None]]


async def run_async(service: str, settings: Settings, main: ServiceMain) -> int:
    """Run one service until SIGTERM/SIGINT; return the process exit code."""
    instance = os.environ.get("MEV_INSTANCE") or f"{socket.gethostname()}-{os.getpid()}"
    ports = ports_for(settings, service)
    metrics.BUILD.info({"service": service, "version": service_version(), "instance": instance})
    metrics.log_samples_to(os.environ.get(metrics.SAMPLES_ENV), service)
    chain = settings.chain
    budget.configure(chain.rpc_budget_per_minute, chain.rpc_budget_shares.get(service, 1.0))  # type: ignore[call-overload]
    opened = open_ports(service, settings.services.host, ports, metrics.registry_for(service))
    if isinstance(opened, PortInUse):
        return _refuse(service, str(opened))
    try:
        return await _run_connected(service, settings, main, instance, ports, opened.health)
    finally:
        opened.close()


def _refuse(service: str, message: str) -> int:
    log.error("refusing to start", extra={"fields": {"error": message}})
    print(f"{service}: refusing to start: {message}", file=sys.stderr, flush=True)
    return RefuseToStart.exit_code


DECLARE_RETRY_S = 30.0  # JetStream timeouts while a cluster elects its stream leaders


async def _run_connected(
    service: str,
    settings: Settings,
    main: ServiceMain,
    instance: str,
    ports: ServicePorts,
    health_socket: socket.socket,
) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        options = connect_options(settings.nats, service)
    except NatsAuthError as exc:
        log.error("cannot connect to NATS", extra={"fields": {"error": str(exc)}})
        return 2
    name, timeout_s = f"mev-{service}-{instance}", settings.nats.connect_timeout_s
    connect = Bus.connect(settings.nats.servers, name, timeout_s, options=options)
    bus = await until_stopped(stop_requested, connect)
    if bus is None:
        return 0
    # a cluster still electing its leaders or placing replicas (the chaos test's fresh 3-node
    # cluster under load: detect exited 1 on one) is not a refusal: asked again a while
    retry_until = loop.time() + DECLARE_RETRY_S
    while True:
        try:
            # declared again after every reconnect: the server may come back without its state
            await bus.declare(lambda: bus.ensure_streams(stream_specs(settings)))
            break
        except Exception as exc:  # with bus permissions, only the operator may declare streams
            if cluster_settling(exc) and loop.time() < retry_until:
                log.warning("streams not declared yet: retrying",
                            extra={"fields": {"error": repr(exc)}})  # fmt: skip
                await asyncio.sleep(1.0)
                continue
            log.error(
                "streams not declared, and this service may not declare them: start NATS with "
                "`mev-bot run` or run `mev-bot nats-auth declare` first",
                extra={"fields": {"error": repr(exc)}},
            )
            await bus.close()
            return 1
    # after a reconnect only (heartbeats create it at start): a service without the right to
    # create it must still start, as before
    bus.declarations.append(lambda: ensure_control_bucket(bus.js, settings.nats.replicas))
    rt = Runtime(service=service, settings=settings, bus=bus, instance=instance)
    settle_heap()  # imports, settings and the connection: never walked by a collection again
    watch_gc()  # after: that one collection (90-180 ms at start on make run) is no pause of work
    return await _serve(rt, main, ports, stop_requested, health_socket)


async def _serve(
    rt: Runtime,
    main: ServiceMain,
    ports: ServicePorts,
    stop_requested: asyncio.Event,
    health_socket: socket.socket,
) -> int:
    """`main` beside the health server, status gauges, heartbeat and shutdown watch, all in
    one TaskGroup, until a stop is requested or `main` ends; then the drain. The exit code."""
    last_error = LastError()
    logging.getLogger().addHandler(last_error)
    server = health_server(rt, ports.health_port)
    main_ended = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        main_task = tasks.create_task(_outcome(main(rt)), name=f"{rt.service}-main")
        main_task.add_done_callback(lambda _: main_ended.set())
        rt.add_check("nats", lambda: Check(rt.bus.is_connected, _connected(rt.bus)))
        rt.add_check("main_loop", lambda: _task_check(main_task))
        served = tasks.create_task(logged(server.serve(sockets=[health_socket]), "health server"))
        helpers = [
            tasks.create_task(logged(loop, what))
            for loop, what in (
                (status_loop(rt), "status loop"),
                (heartbeat_loop(rt, ports, last_error), "heartbeat"),
                (shutdown_watch(rt, stop_requested), "shutdown watch"),
            )
        ]
        log.info(
            "service started",
            extra={
                "fields": {
                    "instance": rt.instance,
                    "health_port": ports.health_port,
                    "metrics_port": ports.metrics_port,
                }
            },
        )
        await wait_any(stop_requested, main_ended)
        exit_code = _early_exit_code(rt.service, main_task, stop_requested)
        log.info("stopping: finishing in-flight work")
        rt.stop.set()
        rt.ready = False
        exit_code = await _drain_main(main_task, rt.settings.services.shutdown_timeout_s, exit_code)
        await cancel_and_wait(helpers)
        await heartbeat_clear(rt)
        logging.getLogger().removeHandler(last_error)
        await rt.bus.close()
        server.should_exit = True
        if not (await asyncio.wait({served}, timeout=2.0))[0]:
            await cancel_and_wait([served])
    log.info("stopped", extra={"fields": {"exit_code": exit_code}})
    return exit_code


async def _outcome(main: Awaitable[None]) -> Exception | None:
    """What `main` ended with (None: returned): kept as the task's result, so a failing main
    is judged by the runtime (exit code) instead of aborting its TaskGroup."""
    try:
        await main
    except Exception as exc:
        return exc
    return None


def _early_exit_code(
    service: str, main_task: asyncio.Task[Exception | None], stop: asyncio.Event
) -> int:
    """Exit code when `main` ended before any stop was asked: 2 for a refusal, else 1."""
    if not main_task.done() or stop.is_set():
        return 0
    ended = main_task.result()
    if isinstance(ended, RefuseToStart):
        log.error("refusing to start", extra={"fields": {"error": str(ended)}})
        print(f"{service}: refusing to start: {ended}", file=sys.stderr, flush=True)
        return ended.exit_code
    log.error("main loop ended unexpectedly", extra={"fields": {"error": repr(ended)}})
    return 1


async def _drain_main(
    main_task: asyncio.Task[Exception | None], timeout_s: float, exit_code: int
) -> int:
    """Give `main` `timeout_s` to settle its in-flight work (ack or hand back); past that it is
    abandoned (its input
    is redelivered) and the exit code is 1."""
    done, _ = await asyncio.wait({main_task}, timeout=timeout_s)
    if not done:
        log.error("shutdown timeout: abandoning in-flight work (it will be redelivered)")
        main_task.cancel()
        return 1
    ended = main_task.result()
    if ended is None or isinstance(ended, RefuseToStart):
        return exit_code  # a refusal's 2 was set when it ended
    return exit_code or 1


def _connected(bus: Bus) -> str:
    return "connected" if bus.is_connected else "disconnected"


def _stall_check(consumer: PullConsumer[Any]) -> Check:
    """Critical: work waiting and nothing acked for `nats.consumer_stall_s`."""
    stalled_for = consumer.stall.stalled_for()
    if stalled_for >= consumer.stall.stall_s:
        return Check(
            False,
            f"consumer {consumer.spec.durable} stalled: {consumer.stall.lag} waiting, "
            f"no ack for {stalled_for:.0f} s",
        )
    return Check(True, f"{consumer.spec.durable}: {consumer.stall.lag} waiting")


def _task_check(task: asyncio.Task[Exception | None]) -> Check:
    if not task.done():
        return Check(True, "running")
    if task.cancelled():
        return Check(False, "cancelled")
    return Check(False, f"ended: {task.result()!r}")


def service_entrypoint(service: str, main: ServiceMain, argv: list[str] | None = None) -> int:
    """`python -m services.<name> [--config PATH]`: load settings, run, return the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument(
        "--config", metavar="PATH", help="config YAML (default: $MEV_CONFIG or config/devnet.yaml)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
    setup_logging(service, settings.logging.level, settings.logging.format)
    return asyncio.run(run_async(service, settings, main))
