#!/usr/bin/env bash
# Rotate the bot key (runbook "Emergency Key Rotation", "Key Compromise").
#   scripts/rotate-keys.sh [emergency] [-k KEY] [-a ARCHIVE_DIR] [--config CONFIG] [--key-only|--lanes]
# 1. emergency: `mev-bot --emergency-stop`, which exits 0 when submit acknowledged the stop or
#    no submit is running (no fresh heartbeat, no submit lease held in NATS: the flag alone
#    holds). Otherwise `python -m mev_ops.stop_check` checks that again; a submit running that
#    did not acknowledge: exit 3, nothing rotated (stop submit some other way, then rerun).
# 2. A new key, 64 hex characters (Python's secrets, like `openssl rand -hex 32`), mode 0600,
#    written to KEY.next (kept across a failed run, so a rerun resumes with the same new key).
# 3. On chain (python -m mev_ops.rotate): sweep the executor's profit tokens and ETH to
#    its beneficiary, transferOwnership(new) from the old key, move the old key's ETH to the new
#    key, acceptOwnership() from the new key, check owner() == new, then setTrader(lane, true)
#    from the new key for every other nonce lane's key (keys.lanes; the ownership change drops
#    them). A failure: exit 1, the old key stays in place. --key-only skips this step (a key
#    that owns no executor). --lanes replaces the lane keys too (mev_ops.rotate_lanes: new 0600
#    keys named traders, their gas money moved, old ones dropped and archived here); it implies
#    emergency (a lane key with a trade in flight is refused; the stop keeps new ones from leaving).
# 4. The old key is moved to ARCHIVE_DIR (0700, file 0600; gpg-encrypted when
#    MEV_BACKUP_PASSPHRASE is set), never left beside the new one; KEY.next becomes KEY.
# The checkout's .venv/bin/mev-bot and .venv/bin/python are used, else mev-bot and python3 on
# PATH (the container image). Defaults: data/keys/devnet.key, data/keys/archive.
set -euo pipefail

key=data/keys/devnet.key
archive=
config_args=()
emergency=0
key_only=0
lanes=()

usage() {
  echo "usage: $0 [emergency] [-k KEY] [-a ARCHIVE_DIR] [--config CONFIG] [--key-only|--lanes]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    emergency) emergency=1; shift ;;
    -k) key=$2; shift 2 ;;
    -a) archive=$2; shift 2 ;;
    --config) config_args=(--config "$2"); shift 2 ;;
    --key-only) key_only=1; shift ;;
    --lanes) lanes=(--lanes); emergency=1; shift ;;
    -h|--help) usage ;;
    *) echo "rotate-keys: unknown argument $1" >&2; usage ;;
  esac
done
archive=${archive:-$(dirname "$key")/archive}
if [ "$key_only" = 1 ] && [ ${#lanes[@]} -gt 0 ]; then
  echo "rotate-keys: --lanes rotates on chain; --key-only does not: choose one" >&2
  usage
fi

checkout=$(cd "$(dirname "$0")/.." && pwd)
find_tool() {  # the checkout's venv first, then PATH
  if [ -x "$checkout/.venv/bin/$1" ]; then echo "$checkout/.venv/bin/$1"; return; fi
  command -v "$2" || { echo "rotate-keys: neither $checkout/.venv/bin/$1 nor $2 on PATH (make setup)" >&2; exit 2; }
}
mev_bot=$(find_tool mev-bot mev-bot)
python=$(find_tool python python3)

if [ ! -f "$key" ]; then
  echo "rotate-keys: no key at $key (-k KEY)" >&2
  exit 2
fi

if [ "$emergency" = 1 ]; then
  echo "rotate-keys: emergency: stopping all sends first"
  if ! "$mev_bot" "${config_args[@]}" --emergency-stop; then
    # Not acknowledged: safe only if no submit can send (no heartbeat, no lease held).
    echo "rotate-keys: no acknowledgement: checking that no submit is running"
    if ! "$python" -m mev_ops.stop_check "${config_args[@]}"; then
      echo "rotate-keys: emergency stop NOT acknowledged by submit: nothing rotated." >&2
      echo "rotate-keys: stop submit (docker compose stop submit), then rerun" >&2
      exit 3
    fi
  fi
fi

umask 077
mkdir -p "$archive"
chmod 700 "$archive"
next="$key.next"
if [ -f "$next" ]; then
  echo "rotate-keys: resuming with the new key already at $next"
else
  "$python" -c "import secrets; print(secrets.token_hex(32))" >"$next.tmp.$$"
  chmod 600 "$next.tmp.$$"
  mv "$next.tmp.$$" "$next"
fi

if [ "$key_only" = 0 ]; then
  if ! "$python" -m mev_ops.rotate "${config_args[@]}" --old-key "$key" --new-key "$next" \
    "${lanes[@]}" --archive "$archive"; then
    echo "rotate-keys: the on-chain rotation failed: $key is still the key; rerun to resume" >&2
    exit 1
  fi
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
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
mv "$next" "$key"
echo "rotate-keys: new key at $key (mode $(stat -c %a "$key"))"
cat <<NEXT
rotate-keys: next steps
  1. restart submit so it loads the new key: docker compose restart submit (or mev-bot run)
  2. validate: scripts/validate-deployment.sh, then mev-bot --resume to send again
  3. the swept profit is with the beneficiary; refill the executor's WETH if own-balance
     (non-flash) trades are wanted
  4. once nothing needs the old key: shred -u the archived copy
  5. with keys.lanes > 1 the lane keys were named traders of the new key above (replaced
     and archived with --lanes; after --key-only: python -m mev_ops.rotate --config CONFIG
     --traders-only --new-key KEY)
NEXT
