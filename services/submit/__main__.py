"""`python -m services.submit [--config PATH]`.

The key is checked before the runtime starts (before NATS, ports, anything): an unsafe or
malformed key file ends the process with one line on stderr naming the problem, exit 2.
"""

import argparse
import sys

from mev_common.runtime import service_entrypoint
from mev_common.settings import ConfigError, load_settings

from services.submit.keys import KeyLoadError, load_lane_signers
from services.submit.service import main
from services.submit.startup import key_is_awaited


def preflight(argv: list[str]) -> int | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config")
    args, _ = parser.parse_known_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError:
        return None  # the entry point reports config problems in its own format
    if key_is_awaited(settings):
        return None
    try:
        load_lane_signers(settings.keys)
    except KeyLoadError as exc:
        print(f"submit: refusing to start: {exc}", file=sys.stderr)
        return 2
    return None


code = preflight(sys.argv[1:])
sys.exit(code if code is not None else service_entrypoint("submit", main))
