"""`mev-bot`: the operator's command line, spelled as the runbook spells it.

Runbook commands are flags (`mev-bot --validate-config`, `mev-bot --emergency-stop`); newer
commands are subcommands (`mev-bot run`, `mev-bot devnet up`). Each command lives in its own
module; this one only parses and dispatches, so `mev-bot --help` stays cheap to import.
Exit codes: 0 ok, 1 the command failed (or a dependency is down), 2 usage or config error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mev_ops.duration import control_arg, duration_arg

if TYPE_CHECKING:
    from mev_common.settings import Settings

CONTROL_FLAGS = (
    "emergency_stop",
    "resume",
    "shutdown_graceful",
    "adjust_rpc_rate",
    "adjust_rpc_pool_size",
    "reset_nonce",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mev-bot",
        description="Operate the mev-pipeline MEV searcher (see docs/RUNBOOK.md).",
    )
    parser.add_argument(
        "--config", metavar="PATH", help="config YAML (default: $MEV_CONFIG or config/devnet.yaml)"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="more detail (with --validate-config: effective config, and exit 1 unless NATS, "
        "every RPC endpoint and the key file are there)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="with --validate-config --verbose: check the file only, probe nothing (CI)",
    )
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument(
        "--validate-config",
        action="store_true",
        help="check the config and exit 0 (valid) or 2 (invalid)",
    )
    actions.add_argument(
        "--emergency-stop",
        action="store_true",
        help="stop all sends now; returns once submit acknowledged, or says the flag holds with "
        "no submit running (one that starts reads it and refuses to trade); survives restarts",
    )
    actions.add_argument(
        "--resume", action="store_true", help="clear the emergency stop; sends resume"
    )
    actions.add_argument(
        "--shutdown-graceful",
        action="store_true",
        help="every service finishes in-flight work (submit hands back bundles not yet gated), "
        "drains NATS and exits 0",
    )
    actions.add_argument(
        "--adjust-rpc-rate",
        type=control_arg("rpc_rate_factor"),
        metavar="F",
        help="scale the rate limit of every RPC endpoint in every service (ingest, detect, "
        "simulate, submit) by F in (0, 10] (0.8 = 20%% slower); returns once each acknowledged",
    )
    actions.add_argument(
        "--adjust-rpc-pool-size",
        type=control_arg("rpc_pool_size"),
        metavar="N",
        help="set the RPC connection pool size (1..1000) of every endpoint in every service",
    )
    actions.add_argument(
        "--reset-nonce",
        action="store_true",
        help="submit re-reads the account nonce from the chain",
    )
    actions.add_argument(
        "--dry-run",
        action="store_true",
        help="run the stack for --duration with submit signing but never sending; print P&L",
    )
    parser.add_argument(
        "--duration",
        type=duration_arg,
        metavar="DURATION",
        help="with --dry-run: how long (60s, 5m; default 60s)",
    )
    parser.add_argument(
        "--timeout",
        type=duration_arg,
        metavar="DURATION",
        help="control commands: how long to wait for acknowledgement (default 5s; "
        "--shutdown-graceful: services.shutdown_timeout_s + 5s)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # `--config` is accepted after a command too (`mev-bot run --config X`, as `make run` types
    # it); SUPPRESS keeps a value given before the command when none follows it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config YAML")
    status = sub.add_parser(
        "status",
        parents=[common],
        help="every service instance: health, version, uptime, consumer lag, last error",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser(
        "run",
        parents=[common],
        help="start embedded NATS, the devnet (if configured) and the four services",
    )

    devnet = sub.add_parser(
        "devnet", parents=[common], help="the local anvil devnet: up, down, flow"
    )
    devnet_sub = devnet.add_subparsers(dest="devnet_command", metavar="ACTION", required=True)
    up = devnet_sub.add_parser(
        "up",
        parents=[common],
        help="start anvil and deploy WETH, tokens, two V2 DEXes and the executor",
    )
    up.add_argument(
        "--seed", type=int, default=None, help="deployment seed (default: devnet.seed from config)"
    )
    down = devnet_sub.add_parser(
        "down", parents=[common], help="stop the devnet started by `devnet up`"
    )
    flow = devnet_sub.add_parser(
        "flow", parents=[common], help="send a seeded flow of user swaps through both routers"
    )
    for action in (up, down, flow):
        action.add_argument(
            "--profile",
            choices=["hyperevm"],
            default=None,
            help="hyperevm: chain 999, 2M-gas blocks, shanghai, behind the HyperEVM RPC "
            "stand-in (default config: config/devnet-hyperevm.yaml)",
        )
    flow.add_argument("--seed", type=int, default=None, help="flow seed (default: devnet.seed)")
    flow.add_argument(
        "--rate", type=float, default=None, help="swaps per second (default: devnet.flow_rate)"
    )
    flow.add_argument(
        "--blocks",
        type=int,
        default=None,
        help="stop after this many blocks (default: run until Ctrl-C)",
    )
    flow.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="wait up to this many seconds for `devnet up` to write the deployment "
        "(`mev-bot run` starts the flow while the devnet deploys)",
    )
    flow.add_argument(
        "--nice",
        type=int,
        default=0,
        choices=range(20),
        metavar="0-19",
        help="lower the flow's CPU priority by this much once it starts sending, its session's "
        "too when it leads one (`mev-bot run` passes devnet.nice)",
    )
    flow.add_argument(
        "--rival",
        type=float,
        default=None,
        metavar="LATENCY_MS",
        help="also run a competing searcher that backruns the same swaps LATENCY_MS after it "
        "sees them (docs/DEVNET.md)",
    )
    nats_auth = sub.add_parser(
        "nats-auth",
        parents=[common],
        help="bus credentials: init (create, reuse), rotate USER, show, "
        "declare (streams, buckets; existing consumers to the config)",
    )
    nats_auth.add_argument("action", choices=("init", "rotate", "show", "declare"))
    nats_auth.add_argument("user", nargs="?", help="with rotate: ingest, detect, ..., operator")
    nats_auth.add_argument("--dir", help="credentials dir (default: nats.credentials_dir)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    flags = [f for f in (*CONTROL_FLAGS, "dry_run", "validate_config") if _given(args, f)]
    if flags and args.command:
        parser.error(f"--{flags[0].replace('_', '-')} takes no command")
    if args.duration is not None and not args.dry_run:
        parser.error("--duration goes with --dry-run")
    if args.offline and not args.validate_config:
        parser.error("--offline goes with --validate-config")
    if args.timeout is not None and not any(_given(args, f) for f in CONTROL_FLAGS):
        parser.error("--timeout goes with a control flag such as --emergency-stop")
    if any(_given(args, f) for f in CONTROL_FLAGS):
        return _control(args)
    if args.dry_run:
        from mev_common.settings import resolve_config_path

        from mev_ops.dry_run import run_dry

        settings = _settings(args.config)
        if settings is None:
            return 2
        return run_dry(resolve_config_path(args.config), settings, args.duration or 60.0)
    if args.command == "status":
        from mev_ops.status import run_status

        settings = _settings(args.config)
        return 2 if settings is None else run_status(settings, as_json=args.json)
    if args.validate_config:
        if args.command:
            parser.error("--validate-config takes no command")
        from mev_ops.config_check import validate_config

        return validate_config(args.config, verbose=args.verbose, offline=args.offline)
    if args.command == "run":
        from mev_ops.stack import run_stack

        return run_stack(args.config)
    if args.command == "nats-auth":
        from mev_ops.nats_auth_cmds import auth_dir, run_nats_auth

        settings = _settings(args.config)
        if settings is None:
            return 2
        return run_nats_auth(settings, args.action, auth_dir(settings, args.dir), args.user)
    if args.command == "devnet":
        from mev_ops.devnet.commands import run_devnet_command

        return run_devnet_command(args)
    parser.print_usage(sys.stderr)
    print("mev-bot: error: give a command or a flag such as --validate-config", file=sys.stderr)
    return 2


def _given(args: argparse.Namespace, flag: str) -> bool:
    value = getattr(args, flag)
    return value is not None and value is not False


def _settings(config: str | None) -> Settings | None:
    """The config, or None after printing each problem (the caller exits 2)."""
    from mev_common.settings import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return None


def _control(args: argparse.Namespace) -> int:
    from mev_ops import control_cmds as cmds

    settings = _settings(args.config)
    if settings is None:
        return 2
    timeout = args.timeout or 5.0
    if args.shutdown_graceful:
        return cmds.run_shutdown(settings, args.timeout)
    if args.emergency_stop:
        return cmds.run_control(settings, cmds.EMERGENCY_STOP, "1", timeout)
    if args.resume:
        return cmds.run_control(settings, cmds.RESUME, "0", timeout)
    if args.adjust_rpc_rate is not None:
        return cmds.run_control(settings, cmds.RPC_RATE, args.adjust_rpc_rate, timeout)
    if args.adjust_rpc_pool_size is not None:
        return cmds.run_control(settings, cmds.RPC_POOL, args.adjust_rpc_pool_size, timeout)
    # --reset-nonce: a fresh token each time, so a repeated reset is a new revision to apply
    import time

    return cmds.run_control(settings, cmds.RESET_NONCE, str(time.time_ns()), timeout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
