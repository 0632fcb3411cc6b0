"""`mev-bot --validate-config`: is this config safe to start the bot with?

The runbook runs it after a failed restart and before bringing a restored config back, so it
must answer in one screen and fail loudly only on what would make the bot misbehave.

Exit codes (cli.py: 0 ok, 1 a dependency is down, 2 config error):
- 2: the file does not validate, the key file is readable by others than its owner, or (with
  --verbose) an RPC endpoint answers with a chain id other than chain.chain_id. Each problem is
  one line on stderr, prefixed by the config file name.
- 1 (with --verbose): NATS or an RPC endpoint is UNREACHABLE, or the key file is missing: the
  deployment cannot run as configured (validate-deployment.sh relies on this).
- 0: valid (and with --verbose: every dependency answers). Without --verbose, or with
  --offline (CI, or a config restored before the network is up), nothing is probed and a
  missing key file is a warning.
Nothing printed here ever shows a key, a password or an RPC URL's path, query or userinfo.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mev_common.settings import (
    SERVICE_NAMES,
    STRATEGY_NAMES,
    ConfigError,
    RpcEndpoint,
    Settings,
    format_wei,
    is_placeholder_address,
    load_settings,
    mask_url,
    masked_dump,
    resolve_config_path,
)

from mev_ops.key_checks import check_lane_keys_distinct, check_secret_files, key_file_state

CONNECT_TIMEOUT_S = 3.0


@dataclass
class Findings:
    """What the checks found beyond schema validation: problems fail, warnings inform."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)


def validate_config(path: str | None, verbose: bool, offline: bool = False) -> int:
    """Validate the config at `path` (or $MEV_CONFIG, or the default); return the exit code.
    `verbose` without `offline` also requires every dependency to answer (exit 1 if not)."""
    cfg = resolve_config_path(path)
    try:
        settings = load_settings(cfg)
    except ConfigError as err:
        return _fail(cfg, err.problems)
    found = Findings()
    check_secret_files(settings, found, key_required=verbose and not offline)
    check_lane_keys_distinct(settings, found)
    check_addresses(settings, found)
    check_consistency(settings, found)
    if found.problems:
        return _fail(cfg, found.problems)

    print(f"{cfg}: valid")
    print("\n".join(summary_lines(settings)))
    if verbose:
        import yaml

        print("\neffective config (secrets masked):")
        print(yaml.safe_dump(masked_dump(settings), sort_keys=False).rstrip())
        print("\nconnectivity:")
        if offline:
            print("not checked (--offline)")
        else:
            asyncio.run(check_connectivity(settings, found))
            print("\n".join(found.lines))
    for warning in found.warnings:
        print(f"warning: {warning}")
    if found.problems:
        return _fail(cfg, found.problems)
    if found.unreachable:
        for line in found.unreachable:
            print(f"{cfg}: {line}", file=sys.stderr)
        return 1
    return 0


def _fail(cfg: Path, problems: list[str]) -> int:
    for line in problems:
        print(f"{cfg}: {line}", file=sys.stderr)
    return 2


# ---- checks across sections (the key files: key_checks.py) -------------------------------


def check_addresses(settings: Settings, found: Findings) -> None:
    """Placeholders validate (so the example file passes) but must never go live unnoticed."""
    contracts = settings.contracts
    named = [("contracts.executor", contracts.executor), ("contracts.weth", contracts.weth)]
    for i, dex in enumerate(contracts.dexes):
        named += [(f"contracts.dexes[{i}].factory", dex.factory)]
        named += [(f"contracts.dexes[{i}].router", dex.router)]
    for label, address in named:
        if address is not None and is_placeholder_address(address):
            found.warnings.append(f"{label} {address} is a placeholder: set the real address")


def check_consistency(settings: Settings, found: Findings) -> None:
    backrun = settings.strategies.backrun
    if backrun is not None and backrun.enabled and not settings.chain.pending_feed:
        found.warnings.append(
            "strategies.backrun is enabled but chain.pending_feed is false: it will find nothing"
        )


# ---- the one-screen summary ---------------------------------------------------------------


def summary_lines(settings: Settings) -> list[str]:
    chain, services = settings.chain, settings.services
    lines = [
        f"chain        {chain.name} (chain id {chain.chain_id}), block gas limit "
        f"{chain.block_gas_limit}, pending feed {'on' if chain.pending_feed else 'off'}",
    ]
    for i, rpc in enumerate(chain.rpc_endpoints):
        label = "rpc" if i == 0 else ""
        ws = f" ws {mask_url(rpc.ws_url)}" if rpc.ws_url else ""
        lines.append(
            f"{label:<12} {rpc.name}: {mask_url(rpc.url)}{ws} "
            f"({rpc.rate_limit_rps:g} req/s, pool {rpc.pool_size})"
        )
    embedded = "embedded, started by mev-bot run" if settings.nats.embedded else "external"
    lines.append(f"nats         {mask_url(settings.nats.url)} ({embedded})")
    layout = "one port set per container" if services.separate_hosts else "one host"
    ports = ", ".join(
        f"{n} {getattr(services, n).health_port}/{getattr(services, n).metrics_port}"
        for n in SERVICE_NAMES
    )
    lines.append(f"services     host {services.host} ({layout}), ports health/metrics:")
    lines.append(f"             {ports}")
    for i, name in enumerate(STRATEGY_NAMES):
        strategy = getattr(settings.strategies, name)
        label = "strategies" if i == 0 else ""
        if strategy is None or not strategy.enabled:
            detail = "disabled"
        else:
            detail = (
                f"min_profit {format_wei(strategy.min_profit)}, max_gas_price "
                f"{format_wei(strategy.max_gas_price)}, max_hops {strategy.max_hops}"
            )
        lines.append(f"{label:<12} {name}: {detail}")
    perf = settings.performance
    lines.append(
        f"performance  simulation_concurrency {perf.simulation_concurrency}, "
        f"decision_timeout_ms {perf.decision_timeout_ms}"
    )
    lines.append(
        f"mempool      max_pending_transactions {settings.mempool.max_pending_transactions}"
    )
    contracts = settings.contracts
    if contracts.deployment_file:
        lines.append(f"contracts    from {contracts.deployment_file}")
    else:
        dexes = ", ".join(d.name for d in contracts.dexes)
        lines.append(f"contracts    executor {contracts.executor}; dexes: {dexes}")
    lines.append(f"database     {settings.database.path}")
    for lane, path in enumerate(settings.keys.lane_paths()):
        label = "key         " if lane == 0 else f"lane {lane} key  "
        lines.append(f"{label} {path} ({key_file_state(path)})")
    return lines


# ---- --verbose: does the network agree with the config? ----------------------------------


async def check_connectivity(settings: Settings, found: Findings) -> None:
    """Ask NATS and every RPC endpoint once, concurrently, each with a short timeout."""
    results: list[Any] = await asyncio.gather(
        probe_nats(
            settings.nats.url,
            min(settings.nats.connect_timeout_s, CONNECT_TIMEOUT_S),
            _nats_options(settings),
        ),
        *(probe_rpc(rpc) for rpc in settings.chain.rpc_endpoints),
    )
    nats_line, *rpc_results = results
    url = mask_url(settings.nats.url)
    if nats_line is None:
        found.lines.append(f"nats         {url}: answers")
    else:
        found.lines.append(f"nats         {url}: UNREACHABLE ({nats_line})")
        found.unreachable.append(
            f"nats.url: {url} is UNREACHABLE ({nats_line}); start NATS or fix nats.url "
            "(--offline checks the file alone)"
        )
    for rpc, (chain_id, error, elapsed_ms) in zip(
        settings.chain.rpc_endpoints, rpc_results, strict=True
    ):
        where = f"rpc          {rpc.name} {mask_url(rpc.url)}"
        if chain_id is None:
            found.lines.append(f"{where}: UNREACHABLE ({error})")
            found.unreachable.append(
                f"chain.rpc_endpoints: {rpc.name} {mask_url(rpc.url)} is UNREACHABLE ({error}); "
                "fix the endpoint or its url (--offline checks the file alone)"
            )
        elif chain_id != settings.chain.chain_id:
            found.lines.append(f"{where}: chain id {chain_id} MISMATCH ({elapsed_ms} ms)")
            found.problems.append(
                f"chain.chain_id: got {settings.chain.chain_id}; expected {chain_id}, the chain "
                f"id that rpc endpoint {rpc.name} ({mask_url(rpc.url)}) answers"
            )
        else:
            found.lines.append(f"{where}: chain id {chain_id} matches ({elapsed_ms} ms)")


def _nats_options(settings: Settings) -> dict[str, Any]:
    """The operator's credential and TLS if present: a server with auth refuses strangers."""
    from mev_common.nats_auth import OPERATOR, NatsAuthError, connect_options

    try:
        return connect_options(settings.nats, OPERATOR)
    except NatsAuthError:
        return {}


async def probe_nats(
    url: str, timeout_s: float, options: dict[str, Any] | None = None
) -> str | None:
    """None if a NATS server accepts a connection, else a short reason."""
    import nats

    async def quiet(_: Exception) -> None:
        return None

    try:
        client = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=timeout_s,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=quiet,
                **(options or {}),
            ),
            timeout_s + 1,
        )
    except Exception as exc:  # any failure to connect is the answer, not a crash
        return _reason(exc)
    await client.close()
    return None


async def probe_rpc(rpc: RpcEndpoint) -> tuple[int | None, str, int]:
    """(chain id, "", ms) if the endpoint answers eth_chainId, else (None, reason, ms)."""
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=min(rpc.timeout_s, CONNECT_TIMEOUT_S)) as client:
            response = await client.post(rpc.url, json=body)
        elapsed = round((time.monotonic() - started) * 1000)
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}", elapsed
        result = response.json().get("result")
        if not isinstance(result, str):
            return None, "answer without a chain id", elapsed
        return int(result, 16), "", elapsed
    except Exception as exc:  # an endpoint that answers nonsense is as good as down
        return None, _reason(exc), round((time.monotonic() - started) * 1000)


def _reason(exc: Exception) -> str:
    """The exception's class only: messages of HTTP errors can quote the URL with its token."""
    name = type(exc).__name__
    return "timeout" if "Timeout" in name else name
