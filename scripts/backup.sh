#!/usr/bin/env bash
# Daily backup (runbook "Automated Backup Procedures"): config tarball, SQLite ledger via the
# online `.backup` (consistent while submit writes; the copy must pass integrity_check) with
# its chain id beside it (database-DATE.chain: restore.sh refuses a backup of another chain),
# and the key gpg-encrypted when MEV_BACKUP_PASSPHRASE is set (never copied in clear). Without
# a passphrase the key is skipped and the exit is 1, unless --without-key says that is intended.
# Old backups beyond --keep-days go. The checkout's Python is found by itself (scripts/lib).
#
#   scripts/backup.sh [-c CONFIG_DIR] [--config FILE] [-d DB] [-k KEY] [-o BACKUP_DIR]
#                     [--keep-days N] [--without-key]
# Defaults: config, $MEV_CONFIG or CONFIG_DIR/devnet.yaml or CONFIG_DIR/production.yaml (for
# the chain id), data/mev-bot.db, data/keys/devnet.key, backups/daily, 30 days.
# MEV_BACKUP_DATE (YYYYMMDD, default today UTC) names the files.
# Exit 0 all backed up; 1 something missing (or the key skipped); 2 usage.
# In compose (slim image: no sqlite3 CLI, python's sqlite3 is used):
#   docker exec mev-bot-submit /app/scripts/backup.sh -c /app/config -d /data/mev-bot.db \
#     -k /app/keys/production.key -o /data/backups
set -euo pipefail
# shellcheck source=/dev/null
. "$(dirname "$0")/lib/checkout.sh"
python=$(find_python) || exit 2

config_dir=config
config=
db=data/mev-bot.db
key=data/keys/devnet.key
out=backups/daily
keep_days=30
without_key=0
stamp=${MEV_BACKUP_DATE:-$(date -u +%Y%m%d)}

usage() {
  echo "usage: $0 [-c CONFIG_DIR] [--config FILE] [-d DB] [-k KEY] [-o BACKUP_DIR]" \
    "[--keep-days N] [--without-key]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    -c) config_dir=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    -d) db=$2; shift 2 ;;
    -k) key=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --keep-days) keep_days=$2; shift 2 ;;
    --without-key) without_key=1; shift ;;
    -h|--help) usage ;;
    *) echo "backup: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$config" ] || config=$(default_config "$config_dir")

sqlite_backup() {  # online backup: consistent even while submit writes (WAL)
  if command -v sqlite3 >/dev/null 2>&1; then
    sqlite3 "$1" ".backup '$2'"
  else
    "$python" -c 'import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()' "$1" "$2"
  fi
}

umask 077
mkdir -p "$out"
[ -d "$config_dir" ] || { echo "backup: no config directory $config_dir" >&2; exit 1; }
[ -f "$db" ] || { echo "backup: no database $db" >&2; exit 1; }
if [ -z "$config" ] || [ ! -f "$config" ]; then
  echo "backup: no config file for the chain id (pass --config FILE)" >&2
  exit 1
fi
chain=$(config_chain_id "$python" "$config")
[ -n "$chain" ] || { echo "backup: $config has no chain.chain_id" >&2; exit 1; }

tar -czf "$out/config-$stamp.tar.gz" -C "$(dirname "$config_dir")" "$(basename "$config_dir")"
echo "backup: $out/config-$stamp.tar.gz"

rm -f "$out/database-$stamp.db"
sqlite_backup "$db" "$out/database-$stamp.db"
check=$("$python" -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' \
  "$out/database-$stamp.db" 2>&1 || true)
if [ "$check" != "ok" ]; then
  echo "backup: the copy $out/database-$stamp.db fails integrity_check: $check" >&2
  exit 1
fi
echo "$chain" > "$out/database-$stamp.chain"
echo "backup: $out/database-$stamp.db (chain $chain, from $config)"

status=0
if [ -f "$key" ] && [ -n "${MEV_BACKUP_PASSPHRASE:-}" ]; then
  gpg --batch --yes --quiet --pinentry-mode loopback --passphrase-fd 0 --symmetric \
    --cipher-algo AES256 --output "$out/keys-$stamp.gpg" "$key" <<<"$MEV_BACKUP_PASSPHRASE"
  echo "backup: $out/keys-$stamp.gpg (AES256)"
elif [ -f "$key" ] && [ "$without_key" = 1 ]; then
  echo "backup: key skipped as asked (--without-key)"
elif [ -f "$key" ]; then
  echo "backup: key NOT backed up (skipped): set MEV_BACKUP_PASSPHRASE to store it" \
    "gpg-encrypted, or pass --without-key if skipping it is intended" >&2
  status=1
fi

find "$out" -maxdepth 1 -type f \
  \( -name '*.tar.gz' -o -name '*.db' -o -name '*.chain' -o -name '*.gpg' \) \
  -mtime +"$keep_days" -print -delete | sed 's/^/backup: removed old /'
exit "$status"
