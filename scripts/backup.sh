#!/usr/bin/env bash
# Daily backup (runbook "Automated Backup Procedures"): config tarball, SQLite ledger via the
# online `.backup` (consistent while submit writes), and the key gpg-encrypted when
# MEV_BACKUP_PASSPHRASE is set (never copied in clear). Old backups beyond --keep-days go.
#
#   scripts/backup.sh [-c CONFIG_DIR] [-d DB] [-k KEY] [-o BACKUP_DIR] [--keep-days N]
# Defaults: config, data/mev-bot.db, data/keys/devnet.key, backups/daily, 30 days.
# In compose (slim image: no sqlite3 CLI, python's sqlite3 is used):
#   docker exec mev-bot-submit /app/scripts/backup.sh -c /app/config -d /data/mev-bot.db \
#     -k /app/keys/production.key -o /data/backups
set -euo pipefail

config_dir=config
db=data/mev-bot.db
key=data/keys/devnet.key
out=backups/daily
keep_days=30
stamp=${MEV_BACKUP_DATE:-$(date -u +%Y%m%d)}

usage() { echo "usage: $0 [-c CONFIG_DIR] [-d DB] [-k KEY] [-o BACKUP_DIR] [--keep-days N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -c) config_dir=$2; shift 2 ;;
    -d) db=$2; shift 2 ;;
    -k) key=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --keep-days) keep_days=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "backup: unknown argument $1" >&2; usage ;;
  esac
done

sqlite_backup() {  # online backup: consistent even while submit writes (WAL)
  if command -v sqlite3 >/dev/null 2>&1; then
    sqlite3 "$1" ".backup '$2'"
  else
    python3 -c 'import sqlite3, sys
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

tar -czf "$out/config-$stamp.tar.gz" -C "$(dirname "$config_dir")" "$(basename "$config_dir")"
echo "backup: $out/config-$stamp.tar.gz"

rm -f "$out/database-$stamp.db"
sqlite_backup "$db" "$out/database-$stamp.db"
echo "backup: $out/database-$stamp.db"

if [ -f "$key" ] && [ -n "${MEV_BACKUP_PASSPHRASE:-}" ]; then
  gpg --batch --yes --quiet --pinentry-mode loopback --passphrase-fd 0 --symmetric \
    --cipher-algo AES256 --output "$out/keys-$stamp.gpg" "$key" <<<"$MEV_BACKUP_PASSPHRASE"
  echo "backup: $out/keys-$stamp.gpg (AES256)"
elif [ -f "$key" ]; then
  echo "backup: key NOT backed up: set MEV_BACKUP_PASSPHRASE to store it gpg-encrypted" >&2
fi

find "$out" -maxdepth 1 -type f \( -name '*.tar.gz' -o -name '*.db' -o -name '*.gpg' \) \
  -mtime +"$keep_days" -print -delete | sed 's/^/backup: removed old /'
