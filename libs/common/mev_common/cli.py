"""`mev-bot`: the operator's command line, spelled as the runbook spells it.

Runbook commands are flags (`mev-bot --validate-config`, `mev-bot --emergency-stop`); newer
commands are subcommands (`mev-bot run`, `mev-bot devnet up`). Each command lives in its own
module; this one only parses and dispatches, so `mev-bot --help` stays cheap to import.
Exit codes: 0 ok, 1 the command failed, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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
        help="more detail (with --validate-config: effective config and connectivity)",
    )
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument(
        "--validate-config",
        action="store_true",
        help="check the config and exit 0 (valid) or 2 (invalid)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser(
        "run",
        help="start embedded NATS, the devnet (if configured) and the four services",
    )

    devnet = sub.add_parser("devnet", help="the local anvil devnet: up, down, flow")
    devnet_sub = devnet.add_subparsers(dest="devnet_command", metavar="ACTION", required=True)
    up = devnet_sub.add_parser(
        "up", help="start anvil and deploy WETH, tokens, two V2 DEXes and the executor"
    )
    up.add_argument(
        "--seed", type=int, default=None, help="deployment seed (default: devnet.seed from config)"
    )
    devnet_sub.add_parser("down", help="stop the devnet started by `devnet up`")
    flow = devnet_sub.add_parser(
        "flow", help="send a seeded flow of user swaps through both routers"
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.validate_config:
        if args.command:
            parser.error("--validate-config takes no command")
        from mev_common.config_check import validate_config

        return validate_config(args.config, verbose=args.verbose)
    if args.command == "run":
        from mev_common.stack import run_stack

        return run_stack(args.config)
    if args.command == "devnet":
        from mev_common.devnet.commands import run_devnet_command

        return run_devnet_command(args)
    parser.print_usage(sys.stderr)
    print("mev-bot: error: give a command or a flag such as --validate-config", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
