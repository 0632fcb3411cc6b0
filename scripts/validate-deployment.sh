#!/usr/bin/env bash
# Validate a running deployment (runbook ./scripts/validate-deployment.bat production):
# config, chain id and every dependency answering (`--validate-config --verbose`: NATS, every
# RPC endpoint, the key file), every service healthy (`mev-bot status`), each service's
# metrics served (its ports from the config), every JetStream stream present.
# The checkout's Python and CLI are found by itself (scripts/lib/checkout.sh).
#   scripts/validate-deployment.sh [production|devnet] [--config CONFIG]
# Defaults: production /app/config/production.yaml, devnet config/devnet.yaml of this checkout.
# Exit 0 all good, 1 otherwise, 2 usage.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$0")/lib/checkout.sh"
python=$(find_python) || exit 2
mev_bot=("$python" -m mev_ops.cli)

target=${1:-devnet}
[ $# -gt 0 ] && shift
case "$target" in
  production) config=/app/config/production.yaml ;;
  devnet) config=$(cd "$(dirname "$0")/.." && pwd)/config/devnet.yaml ;;
  *) echo "usage: $0 [production|devnet] [--config CONFIG]" >&2; exit 2 ;;
esac
if [ "${1:-}" = "--config" ]; then config=$2; fi
[ -f "$config" ] || { echo "validate-deployment: no config $config" >&2; exit 2; }
failed=0

step() { echo "== $*"; }
bad() { echo "FAIL: $*" >&2; failed=1; }

step "config and connectivity (chain id, NATS, every RPC, key)"
"${mev_bot[@]}" --config "$config" --validate-config --verbose || bad "config or connectivity"

step "every service healthy"
"${mev_bot[@]}" --config "$config" status || bad "not every service is healthy"

step "metrics"
# One host: each service's metrics_port; containers (separate_hosts): this container's 9090.
urls=$(MEV_CONFIG=$config "$python" -c 'from mev_common.settings import load_settings
s = load_settings().services
names = ["submit"] if s.separate_hosts else ["ingest", "detect", "simulate", "submit"]
print(" ".join(f"http://{s.host}:{getattr(s, n).metrics_port}/metrics" for n in names))')
for url in $urls; do
  if "$python" -c 'import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=3).read().decode()
sys.exit(0 if "\nmev_bot_status " in body else 1)' "$url"; then
    echo "ok: $url exports mev_bot_status"
  else
    bad "$url does not export mev_bot_status"
  fi
done

step "streams"
MEV_CONFIG=$config "$python" - <<'PY' || bad "streams missing"
import asyncio, sys

import nats
from mev_common.nats_auth import OPERATOR, connect_options
from mev_common.settings import load_settings
from mev_common.subjects import stream_specs


async def main() -> int:
    settings = load_settings()
    nc = await nats.connect(
        settings.nats.url,
        connect_timeout=3,
        allow_reconnect=False,
        **connect_options(settings.nats, OPERATOR),
    )
    try:
        js = nc.jetstream()
        missing = 0
        for spec in stream_specs(settings):
            try:
                info = await js.stream_info(spec.name)
                print(f"ok: stream {spec.name}: {info.state.messages} messages")
            except Exception as exc:
                print(f"FAIL: stream {spec.name}: {exc!r}", file=sys.stderr)
                missing += 1
        return 1 if missing else 0
    finally:
        await nc.close()


sys.exit(asyncio.run(main()))
PY

if [ "$failed" = 0 ]; then echo "deployment valid"; else echo "deployment NOT valid" >&2; fi
exit "$failed"
