#!/usr/bin/env bash
# Restore the SQLite ledger from a backup, then prove it: PRAGMA integrity_check must say "ok"
# and the row count of every table is printed (compare with the backup's).
#
# Refuses (exit 3, nothing changed) unless --force:
# - while any service holds the ledger open: submit holds a shared flock on DB.lock for as long
#   as it has the ledger open; restoring under it would lose everything it books afterwards
#   (stop it first: `docker compose stop submit`, or Ctrl-C `mev-bot run`);
# - when the backup's chain id (database-DATE.chain, written by backup.sh, or the ledger's own
#   rows) differs from the config's chain.chain_id.
# The exclusive lock is held until the restore is done, so a submit starting meanwhile waits.
#
#   scripts/restore.sh -b BACKUP_DB [-d DB] [--config FILE] [-c CONFIG_TARBALL [-C DEST_DIR]]
#                      [--force]
# Defaults: data/mev-bot.db; config $MEV_CONFIG, else config/devnet.yaml, else
# config/production.yaml (under DEST_DIR when a config tarball is restored).
# Exit 0 restored and intact; 1 the backup or the result failed the check; 2 usage; 3 refused.
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$0")/lib/checkout.sh"
python=$(find_python) || exit 2

db=data/mev-bot.db
backup=
config=
config_tar=
dest=.
force=0

usage() {
  echo "usage: $0 -b BACKUP_DB [-d DB] [--config FILE] [-c CONFIG_TARBALL [-C DEST_DIR]]" \
    "[--force]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    -b) backup=$2; shift 2 ;;
    -d) db=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    -c) config_tar=$2; shift 2 ;;
    -C) dest=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage ;;
    *) echo "restore: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$backup" ] || usage

sql() {  # sql DB STATEMENT: sqlite3 CLI, or python's sqlite3 where the CLI is absent
  if command -v sqlite3 >/dev/null 2>&1; then
    sqlite3 -batch "$1" "$2"
  else
    "$python" -c 'import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):
    print("|".join(str(v) for v in row))' "$1" "$2"
  fi
}

integrity() { sql "$1" "PRAGMA integrity_check;" 2>&1 | head -n 5; }

counts() {
  local table
  for table in $(sql "$1" "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name;"); do
    echo "$table $(sql "$1" "SELECT COUNT(*) FROM \"$table\";")"
  done
}

refuse() {
  if [ "$force" = 1 ]; then
    echo "restore: WARNING (--force): $*" >&2
  else
    echo "restore: refusing: $* (nothing was changed; --force overrides)" >&2
    exit 3
  fi
}

backup_chain() {  # the chain id the backup belongs to: its .chain record, else its rows
  local record=${backup%.db}.chain
  if [ -f "$record" ]; then
    tr -d '[:space:]' < "$record"
  else
    sql "$backup" "SELECT GROUP_CONCAT(DISTINCT chain_id) FROM bundles;" 2>/dev/null || true
  fi
}

[ -f "$backup" ] || { echo "restore: no backup $backup" >&2; exit 1; }
check=$(integrity "$backup" || true)
if [ "$check" != "ok" ]; then
  echo "restore: backup $backup fails integrity_check: $check" >&2
  exit 1
fi

# Take the ledger's lock exclusively, without waiting: a holder means a live writer.
mkdir -p "$(dirname "$db")"
exec 9>>"$db.lock"
if ! "$python" -c 'import fcntl; fcntl.flock(9, fcntl.LOCK_EX | fcntl.LOCK_NB)' 2>/dev/null
then
  refuse "a service holds the ledger $db open ($db.lock is locked: submit is running);" \
    "stop it first (docker compose stop submit, or Ctrl-C mev-bot run)"
fi

if [ -n "$config_tar" ]; then
  mkdir -p "$dest"
  tar -xzf "$config_tar" -C "$dest"
  echo "restore: config from $config_tar into $dest"
  [ -n "$config" ] || config=$(default_config "$dest/config")
fi
[ -n "$config" ] || config=$(default_config config)

have=$(backup_chain)
if [ -z "$config" ] || [ ! -f "$config" ]; then
  refuse "no config to check the backup's chain ($have) against: pass --config FILE"
else
  want=$(config_chain_id "$python" "$config")
  if [ -z "$have" ]; then
    echo "restore: the backup records no chain id (no .chain file, no bundles): not compared"
  elif [ "$have" != "$want" ]; then
    refuse "the backup is of chain $have, $config is chain $want"
  else
    echo "restore: backup chain $have matches $config"
  fi
fi

tmp="$db.restore.$$"
cp "$backup" "$tmp"
rm -f "$db-wal" "$db-shm"   # a stale WAL would be replayed onto the restored file
mv -f "$tmp" "$db"

check=$(integrity "$db" || true)
echo "restore: PRAGMA integrity_check: $check"
[ "$check" = "ok" ] || exit 1
counts "$db" | sed 's/^/restore: rows /'
