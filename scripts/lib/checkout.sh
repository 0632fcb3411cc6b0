# Sourced by scripts/*.sh: this checkout's root, its Python and its `mev-bot`, found without
# any variable: .venv/bin/python (`make setup`) first, else python3 on PATH if it can import
# mev_ops (the container image installs it there). Use: `python=$(find_python) || exit 2`;
# the CLI is then `"$python" -m mev_ops.cli` (what the `mev-bot` entry point runs).
# shellcheck shell=bash

checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

find_python() {
  local candidate
  for candidate in "$checkout/.venv/bin/python" "$(command -v python3 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] \
      && "$candidate" -c 'import mev_ops' >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  echo "$(basename "$0"): no Python that imports mev_ops: run \`make setup\` in $checkout" >&2
  return 1
}

config_chain_id() {  # config_chain_id PYTHON FILE: chain.chain_id of a config YAML, or empty
  "$1" -c 'import sys, yaml
doc = yaml.safe_load(open(sys.argv[1])) or {}
print((doc.get("chain") or {}).get("chain_id", ""))' "$2"
}

default_config() {  # default_config CONFIG_DIR: $MEV_CONFIG, else devnet.yaml, else production.yaml
  if [ -n "${MEV_CONFIG:-}" ]; then echo "$MEV_CONFIG"; return; fi
  local name
  for name in devnet.yaml production.yaml; do
    if [ -f "$1/$name" ]; then echo "$1/$name"; return; fi
  done
}
