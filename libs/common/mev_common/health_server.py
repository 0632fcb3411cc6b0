"""A service's HTTP face and its derived gauges: `/health` (200 while every critical check
passes, else 503) and `/ready` (200 once the service also says it is ready), on uvicorn
without its own signal handling (the runtime owns SIGTERM/SIGINT); and the loop that keeps
status, throughput and error-rate gauges fresh between scrapes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from mev_common import metrics
from mev_common.heartbeat import health_body

if TYPE_CHECKING:
    from mev_common.runtime import Runtime


def build_health_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title=f"mev-{rt.service}", docs_url=None, redoc_url=None, openapi_url=None)

    def body(ok: bool, checks: dict[str, Any]) -> dict[str, Any]:
        return health_body(rt, ok, checks)

    @app.get("/health")
    def health() -> JSONResponse:
        ok, checks = rt.health()
        metrics.STATUS.set(1 if ok else 0)
        return JSONResponse(body(ok, checks), status_code=200 if ok else 503)

    @app.get("/ready")
    def ready() -> JSONResponse:
        ok, checks = rt.health()
        is_ready = ok and rt.ready
        return JSONResponse(body(ok, checks), status_code=200 if is_ready else 503)

    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def health_server(rt: Runtime, port: int) -> uvicorn.Server:
    """The /health and /ready server on `services.host`:`port`; run `serve()`, stop it with
    `should_exit = True`."""
    config = uvicorn.Config(
        build_health_app(rt),
        host=rt.settings.services.host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    return _QuietServer(config)


async def status_loop(rt: Runtime) -> None:
    """Keep the derived gauges fresh without waiting for a scrape."""
    tps, errors = metrics.RateTracker(), metrics.RateTracker()
    handled = metrics.RateTracker()
    while True:
        ok, _ = rt.health()
        metrics.STATUS.set(1 if ok else 0)
        metrics.NATS_CONNECTED.set(1 if rt.bus.is_connected else 0)
        processed = metrics.counter_total(metrics.TRANSACTIONS_PROCESSED)
        metrics.TRANSACTIONS_PER_SECOND.set(tps.rate(processed))
        error_rate = errors.rate(metrics.counter_total(metrics.ERRORS))
        handled_rate = handled.rate(metrics.counter_total(metrics.MESSAGES_CONSUMED) + processed)
        metrics.ERROR_RATE.set(min(1.0, error_rate / handled_rate) if handled_rate else 0.0)
        await asyncio.sleep(1.0)
