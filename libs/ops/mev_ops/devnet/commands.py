"""`mev-bot devnet up|down|flow`: the operator's face of the devnet (called from cli.py).

The node's pid and log live next to the deployment file (data/devnet/ by default), so every
command finds them from the config alone. Exit codes: 0 ok, 1 failed, 2 config problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from mev_common.settings import ConfigError, DevnetSettings, Settings, load_settings

from mev_ops.devnet.anvil import LOG_FILE, AnvilError, find_running, start_anvil, stop_running
from mev_ops.devnet.artifacts import ToolchainMissing
from mev_ops.devnet.priority import lower_priority
from mev_ops.devnet.proxy_process import LOG_FILE as PROXY_LOG
from mev_ops.devnet.proxy_process import start_proxy, stats_url, stop_proxy

# web3 and eth_account (deploy, flow, keys, sender: ~1 s of CPU) are imported by the commands
# that use them: `mev-bot run` imports this module for the paths below, before it starts anything

# Used when the config has no `devnet:` section.
DEFAULT_SEED = 1
DEFAULT_PORT = 8545
DEFAULT_BLOCK_TIME_S = 1
DEFAULT_FLOW_RATE = 4.0
DEFAULT_DEPLOYMENT_FILE = "data/devnet/deployment.json"


def run_devnet_command(args: argparse.Namespace) -> int:
    profile = getattr(args, "profile", None)
    config = args.config
    if profile is not None and config is None and not os.environ.get("MEV_CONFIG"):
        config = f"config/devnet-{profile}.yaml"  # `devnet up --profile hyperevm` alone
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"mev-bot: config {exc.path}: {problem}", file=sys.stderr)
        return 2
    if profile is not None and (settings.devnet is None or settings.devnet.profile != profile):
        print(
            f"mev-bot devnet: --profile {profile} but the config's devnet.profile is not "
            f"{profile}; use config/devnet-{profile}.yaml or set devnet.profile",
            file=sys.stderr,
        )
        return 2
    from mev_ops.devnet.deploy import DeployError
    from mev_ops.devnet.keys import KeyFileError
    from mev_ops.devnet.sender import TxFailed

    try:
        if args.devnet_command == "up":
            return devnet_up(settings, args.seed)
        if args.devnet_command == "down":
            return devnet_down(settings)
        if args.devnet_command == "flow":
            rival, nice = getattr(args, "rival", None), getattr(args, "nice", 0)
            return devnet_flow(settings, args.seed, args.rate, args.blocks, args.wait, rival, nice)
    except (AnvilError, ToolchainMissing, KeyFileError, DeployError, TxFailed) as exc:
        print(f"mev-bot devnet: {exc}", file=sys.stderr)
        return 1
    print(f"mev-bot devnet: unknown action {args.devnet_command!r}", file=sys.stderr)
    return 2


def deployment_path(settings: Settings) -> Path:
    return Path(settings.contracts.deployment_file or DEFAULT_DEPLOYMENT_FILE)


def data_dir(settings: Settings) -> Path:
    """Where anvil.pid and anvil.log go: beside the deployment file."""
    return deployment_path(settings).parent


def _devnet_value(settings: Settings, name: str, default: Any) -> Any:
    return getattr(settings.devnet, name) if settings.devnet is not None else default


def devnet_up(settings: Settings, seed: int | None) -> int:
    """Start anvil detached and deploy; says so and exits 0 if it already runs."""
    seed = _devnet_value(settings, "seed", DEFAULT_SEED) if seed is None else seed
    port = _devnet_value(settings, "port", DEFAULT_PORT)
    block_time = _devnet_value(settings, "block_time_s", DEFAULT_BLOCK_TIME_S)
    directory, out = data_dir(settings), deployment_path(settings)
    running = find_running(directory)
    if running is not None:
        deployed = _read_deployment(out)
        where = f"seed {deployed['seed']}, {out}" if deployed else f"no deployment at {out}"
        print(f"devnet already running: pid {running.pid} on {running.rpc_url} ({where}).")
        print("`mev-bot devnet down` stops it; then `mev-bot devnet up` starts afresh.")
        return 0
    from mev_ops.devnet.deploy import deploy_devnet

    started = time.monotonic()
    out.unlink(missing_ok=True)  # a reader must never take the last chain's addresses
    node = start_anvil(
        port, settings.chain.chain_id, block_time, directory, detached=True,
        hardfork=_devnet_value(settings, "hardfork", None),
        gas_limit=_devnet_value(settings, "block_gas_limit", None),
    )  # fmt: skip
    try:
        deployment = deploy_devnet(
            node.rpc_url, settings.chain.chain_id, seed, Path(settings.keys.path), out,
            block_time=block_time, executor_build=settings.contracts.executor_build,
            lane_paths=[Path(p) for p in settings.keys.lane_paths()[1:]],
        )  # fmt: skip
        if settings.devnet is not None and settings.devnet.profile == "hyperevm":
            _start_stand_in(settings.devnet, node.rpc_url, directory)
    except Exception:
        stop_proxy(directory)
        stop_running(directory)
        print(
            f"mev-bot devnet: deploy failed; anvil stopped (log: {directory / LOG_FILE})",
            file=sys.stderr,
        )
        raise
    elapsed = time.monotonic() - started
    dexes = ", ".join(d["name"] for d in deployment["dexes"])
    tokens, pairs = len(deployment["tokens"]), len(deployment["pairs"])
    v3_pools = len(deployment.get("v3_pools", []))
    print(f"devnet up in {elapsed:.1f} s: anvil pid {node.pid} on {node.rpc_url}")
    print(
        f"  chain id {deployment['chain_id']}, seed {seed}: {tokens} tokens, {pairs} V2 pairs, "
        f"{v3_pools} V3 pools"
    )
    print(f"  DEXes {dexes}; executor {deployment['executor']['address']} (bot key owns it)")
    print(f"  deployment: {out}; log: {directory / LOG_FILE}")
    return 0


def _start_stand_in(devnet: DevnetSettings, anvil_url: str, directory: Path) -> None:
    assert devnet.proxy_port is not None  # the settings require it for this profile
    start_proxy(devnet.proxy_port, anvil_url, devnet.proxy_budget_per_minute, directory)
    print(
        f"HyperEVM stand-in on http://127.0.0.1:{devnet.proxy_port} in front of anvil "
        f"({devnet.proxy_budget_per_minute} calls/min per IP; counts at "
        f"{stats_url(devnet.proxy_port)}; log {directory / PROXY_LOG})"
    )


def anvil_url(settings: Settings) -> str:
    """Where the devnet's own tools talk to anvil: past the stand-in, which stands for the
    bot's RPC only (the flow's users are other people on the chain, not our budget)."""
    if settings.devnet is not None and settings.devnet.profile == "hyperevm":
        return f"http://127.0.0.1:{settings.devnet.port}"
    return settings.chain.rpc_endpoints[0].url


def devnet_down(settings: Settings) -> int:
    directory = data_dir(settings)
    proxy_pid = stop_proxy(directory)
    if proxy_pid is not None:
        print(f"HyperEVM stand-in stopped (pid {proxy_pid}).")
    node = stop_running(directory)
    if node is None:
        print(f"devnet is not running (no live anvil recorded in {directory}).")
    else:
        print(f"devnet stopped (anvil pid {node.pid}).")
    return 0


def devnet_flow(
    settings: Settings,
    seed: int | None,
    rate: float | None,
    blocks: int | None,
    wait_s: float = 0.0,
    rival_ms: float | None = None,
    nice: int = 0,
) -> int:
    seed = _devnet_value(settings, "seed", DEFAULT_SEED) if seed is None else seed
    rate = _devnet_value(settings, "flow_rate", DEFAULT_FLOW_RATE) if rate is None else rate
    deadline = time.monotonic() + wait_s
    deployment = _read_deployment(deployment_path(settings))
    while deployment is None and time.monotonic() < deadline:
        time.sleep(0.2)  # `devnet up` writes it once the contracts are deployed
        deployment = _read_deployment(deployment_path(settings))
    if deployment is None:
        print(
            f"mev-bot devnet: no deployment at {deployment_path(settings)}; run `devnet up`",
            file=sys.stderr,
        )
        return 1
    if rival_ms is not None and rival_ms < 0:
        print(f"mev-bot devnet: --rival {rival_ms:g}: a latency in ms, 0 or more", file=sys.stderr)
        return 2
    from mev_ops.devnet.flow import run_flow
    from mev_ops.devnet.rival import rival_running

    url = anvil_url(settings)
    lower_priority(nice)  # `mev-bot run`: below the bot's services from here (priority.py)
    print(
        f"flow: seed {seed}, {rate:g} swaps/s through both routers"
        + (f", {blocks} blocks" if blocks else ", Ctrl-C stops")
    )
    try:
        with rival_running(url, deployment, rival_ms):
            report = run_flow(
                url, deployment, seed, rate, blocks, emit=lambda line: print(line, flush=True)
            )
    except KeyboardInterrupt:
        print("flow stopped.")
        return 0
    print(
        f"flow done: {len(report.tx_hashes)} sent, {report.mined} mined, "
        f"{report.reverted} reverted, {len(report.rejected)} refused by the node"
    )
    for line in report.rejected[:5]:
        print(f"  refused: {line}")
    return 0


def _read_deployment(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
