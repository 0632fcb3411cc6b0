#!/usr/bin/env bash
# Validate a running deployment (runbook ./scripts/validate-deployment.bat production):
# config and chain id (`--validate-config --verbose`), every service healthy (`mev-bot status`),
# metrics served, and every JetStream stream present. Exit 0 all good, 1 otherwise.
#   scripts/validate-deployment.sh [production|devnet] [--config CONFIG]
# METRICS_URLS (space separated) overrides the metrics endpoints to check.
set -euo pipefail

target=${1:-devnet}
[ $# -gt 0 ] && shift
config=
case "$target" in
  production) config=/app/config/production.yaml; default_urls="http://127.0.0.1:9090/metrics" ;;
  devnet) config=config/devnet.yaml
    default_urls="http://127.0.0.1:9191/metrics http://127.0.0.1:9192/metrics http://127.0.0.1:9193/metrics http://127.0.0.1:9194/metrics" ;;
  *) echo "usage: $0 [production|devnet] [--config CONFIG]" >&2; exit 2 ;;
esac
if [ "${1:-}" = "--config" ]; then config=$2; fi
mev_bot=${MEV_BOT:-mev-bot}
python=${PYTHON:-python3}
failed=0

step() { echo "== $*"; }
bad() { echo "FAIL: $*" >&2; failed=1; }

step "config and connectivity (chain id, NATS)"
"$mev_bot" --config "$config" --validate-config --verbose || bad "config or connectivity"

step "every service healthy"
"$mev_bot" --config "$config" status || bad "not every service is healthy"

step "metrics"
for url in ${METRICS_URLS:-$default_urls}; do
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
