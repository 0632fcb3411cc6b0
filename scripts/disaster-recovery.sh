#!/usr/bin/env bash
# Complete system recovery from one day's backups (runbook "Disaster Recovery"): config,
# ledger (scripts/restore.sh: integrity-checked, refused while submit holds it or when the
# backup's chain differs, unless --force), key (gpg, with MEV_BACKUP_PASSPHRASE), then the
# restored config is validated offline (`--validate-config --verbose --offline`; exit 1 if it
# does not validate). Services are NOT started: the operator does that, then runs
# validate-deployment.sh and a dry run before `mev-bot --resume`. The checkout's Python and CLI
# are found by itself (scripts/lib/checkout.sh).
#   scripts/disaster-recovery.sh [-b BACKUP_DIR] [--date YYYYMMDD] [-C DEST_DIR] [-d DB] [-k KEY]
#                                [--config FILE] [--force]
# Defaults: backups/daily, the newest database-*.db there, ., data/mev-bot.db,
# data/keys/devnet.key; config: $MEV_CONFIG, else DEST_DIR/config/devnet.yaml, else
# DEST_DIR/config/production.yaml. Exit 0 restored and valid; 1 failed; 2 usage; 3 refused.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$0")/lib/checkout.sh"
python=$(find_python) || exit 2

backups=backups/daily
stamp=
dest=.
db=data/mev-bot.db
key=data/keys/devnet.key
config=
force=()
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  echo "usage: $0 [-b BACKUP_DIR] [--date YYYYMMDD] [-C DEST_DIR] [-d DB] [-k KEY]" \
    "[--config FILE] [--force]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    -b) backups=$2; shift 2 ;;
    --date) stamp=$2; shift 2 ;;
    -C) dest=$2; shift 2 ;;
    -d) db=$2; shift 2 ;;
    -k) key=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --force) force=(--force); shift ;;
    -h|--help) usage ;;
    *) echo "disaster-recovery: unknown argument $1" >&2; usage ;;
  esac
done
if [ -z "$stamp" ]; then
  newest=$(find "$backups" -maxdepth 1 -name 'database-*.db' | sort | tail -n 1)
  [ -n "$newest" ] || { echo "disaster-recovery: no database-*.db in $backups" >&2; exit 1; }
  stamp=$(basename "$newest" .db)
  stamp=${stamp#database-}
fi
echo "disaster-recovery: restoring the backups of $stamp from $backups"

config_args=()
[ -z "$config" ] || config_args=(--config "$config")
"$here/restore.sh" -b "$backups/database-$stamp.db" -d "$db" \
  -c "$backups/config-$stamp.tar.gz" -C "$dest" "${config_args[@]}" "${force[@]}"

if [ -f "$backups/keys-$stamp.gpg" ]; then
  if [ -z "${MEV_BACKUP_PASSPHRASE:-}" ]; then
    echo "disaster-recovery: keys-$stamp.gpg present: set MEV_BACKUP_PASSPHRASE to restore it" >&2
    exit 1
  fi
  umask 077
  mkdir -p "$(dirname "$key")"
  gpg --batch --yes --quiet --pinentry-mode loopback --passphrase-fd 0 --decrypt \
    --output "$key" "$backups/keys-$stamp.gpg" <<<"$MEV_BACKUP_PASSPHRASE"
  chmod 600 "$key"
  echo "disaster-recovery: key restored to $key (mode 600)"
fi

[ -n "$config" ] || config=$(default_config "$dest/config")
if [ -z "$config" ]; then
  echo "disaster-recovery: no config in $dest/config to validate: pass --config FILE" >&2
  exit 1
fi
if ! "$python" -m mev_ops.cli --config "$config" --validate-config --verbose --offline \
  >/dev/null; then
  echo "disaster-recovery: restored, but $config does not validate (see above): fix it" \
    "before starting the services" >&2
  exit 1
fi
echo "disaster-recovery: $config validates (offline: start the services, then" \
  "validate-deployment.sh checks NATS and the RPCs)"
cat <<NEXT
disaster-recovery: restored. Next:
  1. start the services: docker compose -f deploy/compose/docker-compose.yml up -d (or make run)
  2. scripts/validate-deployment.sh production
  3. mev-bot --dry-run --duration 300s (with the live services stopped), then mev-bot --resume
NEXT
