#!/usr/bin/env bash
# Complete system recovery from one day's backups (runbook "Disaster Recovery"): config,
# key (gpg, with MEV_BACKUP_PASSPHRASE), ledger (scripts/restore.sh: integrity-checked), then
# the config is validated. Services are NOT started: the operator does that, then runs
# validate-deployment.sh and a dry run before `mev-bot --resume`.
#   scripts/disaster-recovery.sh [-b BACKUP_DIR] [--date YYYYMMDD] [-C DEST_DIR] [-d DB] [-k KEY]
# Defaults: backups/daily, the newest database-*.db there, ., data/mev-bot.db, data/keys/devnet.key
set -euo pipefail

backups=backups/daily
stamp=
dest=.
db=data/mev-bot.db
key=data/keys/devnet.key
here=$(cd "$(dirname "$0")" && pwd)

usage() { echo "usage: $0 [-b BACKUP_DIR] [--date YYYYMMDD] [-C DEST_DIR] [-d DB] [-k KEY]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -b) backups=$2; shift 2 ;;
    --date) stamp=$2; shift 2 ;;
    -C) dest=$2; shift 2 ;;
    -d) db=$2; shift 2 ;;
    -k) key=$2; shift 2 ;;
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

"$here/restore.sh" -b "$backups/database-$stamp.db" -d "$db" \
  -c "$backups/config-$stamp.tar.gz" -C "$dest"

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

if command -v "${MEV_BOT:-mev-bot}" >/dev/null 2>&1 && [ -n "${MEV_CONFIG:-}" ]; then
  "${MEV_BOT:-mev-bot}" --config "$MEV_CONFIG" --validate-config
fi
cat <<NEXT
disaster-recovery: restored. Next:
  1. start the services: docker compose -f deploy/compose/docker-compose.yml up -d (or make run)
  2. scripts/validate-deployment.sh production
  3. mev-bot --dry-run --duration 300s (with the live services stopped), then mev-bot --resume
NEXT
