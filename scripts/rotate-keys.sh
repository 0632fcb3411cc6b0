#!/usr/bin/env bash
# Rotate the bot key (runbook "Emergency Key Rotation", "Key Compromise").
#   scripts/rotate-keys.sh [emergency] [-k KEY] [-a ARCHIVE_DIR] [--config CONFIG]
# emergency: `mev-bot --emergency-stop` first (sends stop within a second; the flag holds
# across restarts). If no submit acknowledges, the rotation still happens (a leaked key is
# worse) and the exit code is 3 so the operator knows sends were not confirmed stopped.
# The new key is 64 hex characters, mode 0600 (like `openssl rand -hex 32`); the old key is
# moved to ARCHIVE_DIR (0700, file 0600; gpg-encrypted when MEV_BACKUP_PASSPHRASE is set),
# never left beside the new one. Defaults: data/keys/devnet.key, data/keys/archive.
set -euo pipefail

key=data/keys/devnet.key
archive=
config_args=()
emergency=0
mev_bot=${MEV_BOT:-mev-bot}

usage() { echo "usage: $0 [emergency] [-k KEY] [-a ARCHIVE_DIR] [--config CONFIG]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    emergency) emergency=1; shift ;;
    -k) key=$2; shift 2 ;;
    -a) archive=$2; shift 2 ;;
    --config) config_args=(--config "$2"); shift 2 ;;
    -h|--help) usage ;;
    *) echo "rotate-keys: unknown argument $1" >&2; usage ;;
  esac
done
archive=${archive:-$(dirname "$key")/archive}
status=0

if [ "$emergency" = 1 ]; then
  echo "rotate-keys: emergency: stopping all sends first"
  if ! "$mev_bot" "${config_args[@]}" --emergency-stop; then
    echo "rotate-keys: WARNING: emergency stop NOT acknowledged; rotating anyway" >&2
    status=3
  fi
fi

umask 077
mkdir -p "$archive" "$(dirname "$key")"
chmod 700 "$archive"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
new="$key.new.$$"
openssl rand -hex 32 >"$new"
chmod 600 "$new"

if [ -f "$key" ]; then
  old="$archive/$(basename "$key").$stamp"
  if [ -n "${MEV_BACKUP_PASSPHRASE:-}" ]; then
    gpg --batch --yes --quiet --pinentry-mode loopback --passphrase-fd 0 --symmetric \
      --cipher-algo AES256 --output "$old.gpg" "$key" <<<"$MEV_BACKUP_PASSPHRASE"
    shred -u "$key" 2>/dev/null || rm -f "$key"
    old="$old.gpg"
  else
    mv "$key" "$old"
  fi
  chmod 600 "$old"
  echo "rotate-keys: old key archived at $old"
fi
mv "$new" "$key"
echo "rotate-keys: new key at $key (mode $(stat -c %a "$key"))"
cat <<NEXT
rotate-keys: next steps
  1. fund the new key's address and, if the executor is owned by the old key, transfer its
     ownership (the address: mev-bot --validate-config --verbose prints the bot account)
  2. restart submit so it loads the key: docker compose restart submit (or mev-bot run)
  3. validate: scripts/validate-deployment.sh, then mev-bot --resume to send again
  4. once nothing needs the old key: shred -u the archived copy
NEXT
exit "$status"
