#!/usr/bin/env bash
# Restore the SQLite ledger from a backup, then prove it: PRAGMA integrity_check must say "ok"
# and the row count of every table is printed (compare with the backup's). Stop submit first
# (`docker compose stop submit`): restoring under a running writer loses its writes.
#
#   scripts/restore.sh -b BACKUP_DB [-d DB] [-c CONFIG_TARBALL [-C DEST_DIR]]
# Exit 0 restored and intact; 1 the backup or the result failed the check; 2 usage.
set -euo pipefail

db=data/mev-bot.db
backup=
config_tar=
dest=.

usage() { echo "usage: $0 -b BACKUP_DB [-d DB] [-c CONFIG_TARBALL [-C DEST_DIR]]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -b) backup=$2; shift 2 ;;
    -d) db=$2; shift 2 ;;
    -c) config_tar=$2; shift 2 ;;
    -C) dest=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "restore: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$backup" ] || usage

sql() {  # sql DB STATEMENT: sqlite3 CLI, or python's sqlite3 where the CLI is absent
  if command -v sqlite3 >/dev/null 2>&1; then
    sqlite3 -batch "$1" "$2"
  else
    python3 -c 'import sqlite3, sys
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

[ -f "$backup" ] || { echo "restore: no backup $backup" >&2; exit 1; }
check=$(integrity "$backup" || true)
if [ "$check" != "ok" ]; then
  echo "restore: backup $backup fails integrity_check: $check" >&2
  exit 1
fi

if [ -n "$config_tar" ]; then
  mkdir -p "$dest"
  tar -xzf "$config_tar" -C "$dest"
  echo "restore: config from $config_tar into $dest"
fi

mkdir -p "$(dirname "$db")"
tmp="$db.restore.$$"
cp "$backup" "$tmp"
rm -f "$db-wal" "$db-shm"   # a stale WAL would be replayed onto the restored file
mv -f "$tmp" "$db"

check=$(integrity "$db" || true)
echo "restore: PRAGMA integrity_check: $check"
[ "$check" = "ok" ] || exit 1
counts "$db" | sed 's/^/restore: rows /'
