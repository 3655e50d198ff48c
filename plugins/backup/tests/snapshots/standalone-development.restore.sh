#!/usr/bin/env bash
# restore.sh for `dev-cache`, rendered by redplate: change the template, not this file.
#
# Restores one Redis node from a backup written by backup.sh:
#   1. verify the `.sha256` checksum, then decrypt and decompress into a
#      scratch directory and check it is an RDB snapshot (nothing touched yet);
#   2. stage the snapshot inside the data directory (same file system);
#   3. stop the server with SHUTDOWN NOSAVE (or REDIS_STOP_CMD) so it cannot
#      write over the restored files, and wait until it is down;
#   4. move the current RDB / AOF aside into `.redplate-pre-restore/` and put
#      the snapshot in place. With AOF on, Redis loads the AOF and ignores
#      the RDB, so the snapshot becomes the AOF instead: Redis 7 gets a fresh
#      `appendonlydir` whose manifest names the snapshot as its base file
#      (an AOF base may be an RDB); Redis 6 gets it as `appendonly.aof`,
#      which Redis reads as an RDB preamble. The AOF stays on throughout;
#   5. start the server with REDIS_START_CMD and wait until it has loaded.
# With --aof (the AOF copy backup.sh keeps beside the RDB), the AOF folder is
# restored instead of the snapshot, and --to-time SECONDS first cuts it at
# that second with `redis-check-aof --truncate-to-timestamp` (point in time;
# needs `aof-timestamp-enabled yes`). --decode-to DIR only verifies and
# decodes into DIR (the server is not touched); --offline places the files
# of a server the caller has stopped and will start.
# Restore the master: replicas resynchronise from it. With Sentinel, the master
# is down between steps 3 and 5; if that lasts longer than Sentinel's
# down-after, Sentinel fails over and the restored node rejoins as a replica
# (losing the restore): keep the window short or pause failover first
# (`SENTINEL SET <master> down-after-milliseconds ...`). In a cluster, restore
# every shard's master from its own backup (BACKUP_PREFIX names the shard).
set -euo pipefail
PROG=restore.sh

# --- settings (environment variables win over the rendered defaults) --------
# Exported so REDIS_START_CMD / REDIS_STOP_CMD can name rendered files.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export SCRIPT_DIR
DEFAULT_REDIS_HOST='127.0.0.1'
DEFAULT_REDIS_PORT='7100'
DEFAULT_REDIS_TLS='0'
DEFAULT_REDIS_CACERT=''
DEFAULT_REDIS_CERT=''
DEFAULT_REDIS_KEY=''
DEFAULT_REDIS_USER=''
DEFAULT_REDIS_PASSWORD_FILE=''
DEFAULT_REDIS_DATA_DIR="$SCRIPT_DIR/../data/dev-cache-0"
DEFAULT_RDB_FILENAME='dump.rdb'
DEFAULT_BACKUP_DIR='/backups'
DEFAULT_BACKUP_S3_URL=''
DEFAULT_BACKUP_PREFIX='dev-cache'
DEFAULT_BACKUP_COMPRESSION='zstd'
DEFAULT_BACKUP_COMPRESSION_LEVEL='3'
DEFAULT_BACKUP_ENCRYPT='0'
DEFAULT_BACKUP_KEY_FILE=''
DEFAULT_BACKUP_KEY_ENV=''
DEFAULT_BACKUP_TIMEOUT='3600'

REDIS_HOST="${REDIS_HOST:-$DEFAULT_REDIS_HOST}"
REDIS_PORT="${REDIS_PORT:-$DEFAULT_REDIS_PORT}"
REDIS_TLS="${REDIS_TLS:-$DEFAULT_REDIS_TLS}"
REDIS_CACERT="${REDIS_CACERT-$DEFAULT_REDIS_CACERT}"
REDIS_CERT="${REDIS_CERT-$DEFAULT_REDIS_CERT}"
REDIS_KEY="${REDIS_KEY-$DEFAULT_REDIS_KEY}"
REDIS_USER="${REDIS_USER-$DEFAULT_REDIS_USER}"
REDIS_PASSWORD_FILE="${REDIS_PASSWORD_FILE-$DEFAULT_REDIS_PASSWORD_FILE}"
REDIS_DATA_DIR="${REDIS_DATA_DIR:-}"
RDB_FILENAME="${RDB_FILENAME:-}"
BACKUP_DIR="${BACKUP_DIR:-$DEFAULT_BACKUP_DIR}"
BACKUP_S3_URL="${BACKUP_S3_URL-$DEFAULT_BACKUP_S3_URL}"
BACKUP_PREFIX="${BACKUP_PREFIX:-$DEFAULT_BACKUP_PREFIX}"
BACKUP_COMPRESSION="${BACKUP_COMPRESSION:-$DEFAULT_BACKUP_COMPRESSION}"
BACKUP_COMPRESSION_LEVEL="${BACKUP_COMPRESSION_LEVEL:-$DEFAULT_BACKUP_COMPRESSION_LEVEL}"
BACKUP_ENCRYPT="${BACKUP_ENCRYPT:-$DEFAULT_BACKUP_ENCRYPT}"
BACKUP_KEY_FILE="${BACKUP_KEY_FILE-$DEFAULT_BACKUP_KEY_FILE}"
BACKUP_KEY_ENV="${BACKUP_KEY_ENV-$DEFAULT_BACKUP_KEY_ENV}"
BACKUP_TIMEOUT="${BACKUP_TIMEOUT:-$DEFAULT_BACKUP_TIMEOUT}"

# --- helpers ------------------------------------------------------------------
log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "\`$1\` is required ($2) but is not installed"; }
is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

check_common_settings() {
  is_uint "$REDIS_PORT" || die "REDIS_PORT must be a port number, got \`$REDIS_PORT\`"
  is_uint "$BACKUP_TIMEOUT" || die "BACKUP_TIMEOUT must be a number of seconds, got \`$BACKUP_TIMEOUT\`"
  case "$REDIS_TLS" in 0 | 1) ;; *) die "REDIS_TLS must be 0 or 1, got \`$REDIS_TLS\`" ;; esac
  case "$BACKUP_ENCRYPT" in 0 | 1) ;; *) die "BACKUP_ENCRYPT must be 0 or 1, got \`$BACKUP_ENCRYPT\`" ;; esac
  need redis-cli "to talk to Redis"
  need sha256sum "to checksum backups"
}

# redis-cli with host, port, TLS and user. The password travels in
# REDISCLI_AUTH (read from a file), never as `-a` on a command line.
CLI=()
setup_cli() {
  CLI=(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT")
  if [ "$REDIS_TLS" = 1 ]; then
    CLI+=(--tls)
    if [ -n "$REDIS_CACERT" ]; then CLI+=(--cacert "$REDIS_CACERT"); fi
    if [ -n "$REDIS_CERT" ]; then CLI+=(--cert "$REDIS_CERT" --key "$REDIS_KEY"); fi
  fi
  if [ -n "$REDIS_PASSWORD_FILE" ]; then
    [ -r "$REDIS_PASSWORD_FILE" ] || die "cannot read the password file \`$REDIS_PASSWORD_FILE\`; set REDIS_PASSWORD_FILE (or empty it when auth is off)"
    REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")"
    export REDISCLI_AUTH
    if [ -n "$REDIS_USER" ]; then CLI+=(--user "$REDIS_USER"); fi
  fi
}
rcli() { "${CLI[@]}" "$@"; }

# One field of INFO persistence, e.g. `info_field rdb_bgsave_in_progress`.
info_field() {
  local section="$1" field="$2"
  rcli INFO "$section" | tr -d '\r' | sed -n "s/^${field}://p"
}

# A CONFIG GET value, or nothing when CONFIG is not allowed for this user.
config_get() {
  rcli CONFIG GET "$1" 2>/dev/null | tr -d '\r' | sed -n '2p' || true
}

ping_ok() { [ "$(rcli PING 2>/dev/null | tr -d '\r')" = PONG ]; }

# The -pass argument for openssl: the key file, or an environment variable.
openssl_pass() {
  if [ -n "$BACKUP_KEY_FILE" ]; then
    [ -r "$BACKUP_KEY_FILE" ] || die "cannot read the encryption key file \`$BACKUP_KEY_FILE\`; set BACKUP_KEY_FILE"
    printf 'file:%s' "$BACKUP_KEY_FILE"
  elif [ -n "$BACKUP_KEY_ENV" ]; then
    [ -n "${!BACKUP_KEY_ENV:-}" ] || die "the encryption key variable \`$BACKUP_KEY_ENV\` is empty; set it or BACKUP_KEY_FILE"
    printf 'env:%s' "$BACKUP_KEY_ENV"
  else
    die "encryption is on but no key is configured; set BACKUP_KEY_FILE (a file holding the key)"
  fi
}
OPENSSL_ARGS=(enc -aes-256-cbc -pbkdf2 -iter 200000 -salt)

DEFAULT_AOF_ENABLED='no'
DEFAULT_AOF_DIRNAME='appendonlydir'
AOF_ENABLED="${AOF_ENABLED:-}"
AOF_DIRNAME="${AOF_DIRNAME:-}"
AOF_FILENAME="${AOF_FILENAME:-}"
REDIS_START_CMD="${REDIS_START_CMD:-}"
REDIS_STOP_CMD="${REDIS_STOP_CMD:-}"
RESTORE_TIMEOUT="${RESTORE_TIMEOUT:-120}"
RESTORE_CONFIRM="${RESTORE_CONFIRM:-no}"

usage() {
  cat <<EOF
Usage: $PROG [options] (BACKUP_FILE | --latest)

Restores one Redis node of \`dev-cache\` from a backup made by backup.sh. Run it
where the node's data directory is (the same machine or container).

Options:
  --yes                 confirm: the node's current data set is replaced (or RESTORE_CONFIRM=yes)
  --latest              restore the newest backup in BACKUP_DIR
  --start-cmd CMD       how to start the server again (or REDIS_START_CMD); required
  --stop-cmd CMD        how to stop it (or REDIS_STOP_CMD) [SHUTDOWN NOSAVE]
  --data-dir DIR        the node's data directory (or REDIS_DATA_DIR) [CONFIG GET dir, else $DEFAULT_REDIS_DATA_DIR]
  --aof FILE            restore this AOF copy (FILE.aof.tar*, made with the backup) instead of the snapshot
  --to-time SECONDS     with --aof: replay the AOF only up to this Unix time (redis-check-aof --truncate-to-timestamp)
  --decode-to DIR       only verify and decode into DIR (dump.rdb, and aof/ with --aof); the server is not touched
  --offline             the server is stopped by the caller, who starts it again: only place the files
  -h, --help            this text

Environment (default in brackets): REDIS_HOST, REDIS_PORT [$DEFAULT_REDIS_HOST:$DEFAULT_REDIS_PORT],
REDIS_TLS [$DEFAULT_REDIS_TLS], REDIS_CACERT, REDIS_CERT, REDIS_KEY, REDIS_USER [$DEFAULT_REDIS_USER],
REDIS_PASSWORD_FILE [$DEFAULT_REDIS_PASSWORD_FILE], BACKUP_DIR [$DEFAULT_BACKUP_DIR],
BACKUP_KEY_FILE [$DEFAULT_BACKUP_KEY_FILE], BACKUP_KEY_ENV [$DEFAULT_BACKUP_KEY_ENV],
RDB_FILENAME, AOF_ENABLED (yes/no), AOF_DIRNAME, AOF_FILENAME [from CONFIG GET, else the template:
$DEFAULT_RDB_FILENAME, $DEFAULT_AOF_ENABLED, $DEFAULT_AOF_DIRNAME], RESTORE_TIMEOUT seconds [120],
BACKUP_PREFIX [$DEFAULT_BACKUP_PREFIX], RESTORE_ALLOW_REPLICA=1 to restore a replica anyway.

An s3:// BACKUP_FILE is downloaded first (needs aws). The previous data is kept in
DATA_DIR/.redplate-pre-restore/ until the next restore.
Exit status: 0 on success; 1 on failure (a failure before step 3 leaves the server untouched).
EOF
}

FILE=""
LATEST=0
AOF_FILE=""
TO_TIME=""
DECODE_TO=""
OFFLINE=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --yes) RESTORE_CONFIRM=yes ;;
    --latest) LATEST=1 ;;
    --start-cmd) [ $# -ge 2 ] || die "--start-cmd needs a value"; REDIS_START_CMD="$2"; shift ;;
    --stop-cmd) [ $# -ge 2 ] || die "--stop-cmd needs a value"; REDIS_STOP_CMD="$2"; shift ;;
    --data-dir) [ $# -ge 2 ] || die "--data-dir needs a value"; REDIS_DATA_DIR="$2"; shift ;;
    --aof) [ $# -ge 2 ] || die "--aof needs a value"; AOF_FILE="$2"; shift ;;
    --to-time) [ $# -ge 2 ] || die "--to-time needs a value"; TO_TIME="$2"; shift ;;
    --decode-to) [ $# -ge 2 ] || die "--decode-to needs a value"; DECODE_TO="$2"; shift ;;
    --offline) OFFLINE=1 ;;
    -*) die "unknown option \`$1\` (see --help)" ;;
    *) [ -z "$FILE" ] || die "only one backup file can be restored"; FILE="$1" ;;
  esac
  shift
done

check_common_settings
is_uint "$RESTORE_TIMEOUT" || die "RESTORE_TIMEOUT must be a number of seconds"
if [ -z "$DECODE_TO" ]; then
  [ "$RESTORE_CONFIRM" = yes ] || die "restoring replaces the node's data: pass --yes (or RESTORE_CONFIRM=yes)"
  [ "$OFFLINE" = 1 ] || [ -n "$REDIS_START_CMD" ] || die "set --start-cmd or REDIS_START_CMD: the command that starts this Redis node again"
fi
if [ -n "$TO_TIME" ]; then
  [ -n "$AOF_FILE" ] || die "--to-time needs --aof: only the AOF copy can be cut at a given second"
  is_uint "$TO_TIME" || die "--to-time must be a Unix time in seconds, got \`$TO_TIME\`"
  need redis-check-aof "to cut the AOF at --to-time"
fi
if [ -n "$AOF_FILE" ]; then need tar "to unpack the AOF copy"; fi
if [ "$LATEST" = 1 ]; then
  [ -z "$FILE" ] || die "give a backup file or --latest, not both"
  FILE="$(find "$BACKUP_DIR" -maxdepth 1 -type f -name "$BACKUP_PREFIX-*.rdb*" ! -name '*.sha256' -printf '%p\n' | LC_ALL=C sort | tail -n 1)"
  [ -n "$FILE" ] || die "no backup named $BACKUP_PREFIX-*.rdb* in $BACKUP_DIR"
fi
[ -n "$FILE" ] || die "which backup? give a file or --latest (see --help)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/redplate-restore.XXXXXX")"
STAGED=()
cleanup() {
  rm -rf "$WORK"
  if [ "${#STAGED[@]}" -gt 0 ]; then rm -rf "${STAGED[@]}"; fi
}
trap cleanup EXIT

if [ "${FILE#s3://}" != "$FILE" ]; then
  need aws "to download $FILE"
  aws s3 cp --only-show-errors "$FILE" "$WORK/$(basename "$FILE")"
  aws s3 cp --only-show-errors "$FILE.sha256" "$WORK/$(basename "$FILE").sha256"
  FILE="$WORK/$(basename "$FILE")"
fi
# decode FILE OUT: verify FILE against FILE.sha256 before anything else, then
# decrypt and decompress it into OUT; REST is left holding its base name.
decode() {
  local file="$1" out="$2" cur expected actual
  [ -r "$file" ] || die "cannot read the backup \`$file\`"
  [ -r "$file.sha256" ] || die "no checksum file \`$file.sha256\`: refusing to restore an unverified backup"
  expected="$(cut -d' ' -f1 <"$file.sha256")"
  actual="$(sha256sum "$file" | cut -d' ' -f1)"
  if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
    die "checksum mismatch for $file (expected $expected, got $actual): the backup is corrupt; nothing was changed"
  fi
  log "checksum ok: $file"
  cur="$WORK/encoded"
  cp "$file" "$cur"
  REST="$(basename "$file")"
  if [ "${REST%.enc}" != "$REST" ]; then
    need openssl "the backup is encrypted"
    PASS_ARG="$(openssl_pass)"
    openssl "${OPENSSL_ARGS[@]}" -d -in "$cur" -out "$cur.dec" -pass "$PASS_ARG" || die "decryption failed (wrong key?); nothing was changed"
    mv "$cur.dec" "$cur"
    REST="${REST%.enc}"
  fi
  case "$REST" in
    *.zst) need zstd "the backup is zstd-compressed"; zstd -q -d -c "$cur" >"$out" || die "zstd could not decompress the backup; nothing was changed"; REST="${REST%.zst}" ;;
    *.gz) need gzip "the backup is gzip-compressed"; gzip -d -c "$cur" >"$out" || die "gzip could not decompress the backup; nothing was changed"; REST="${REST%.gz}" ;;
    *.rdb | *.aof.tar) mv "$cur" "$out" ;;
    *) die "cannot tell how \`$REST\` was written (expected .rdb or .aof.tar, then .zst or .gz, optionally .enc)" ;;
  esac
  rm -f "$cur"
}

for f in "$FILE" "$AOF_FILE"; do
  if [ "${f#s3://}" != "$f" ]; then
    need aws "to download $f"
    aws s3 cp --only-show-errors "$f" "$WORK/$(basename "$f")"
    aws s3 cp --only-show-errors "$f.sha256" "$WORK/$(basename "$f").sha256"
    if [ "$f" = "$FILE" ]; then FILE="$WORK/$(basename "$f")"; else AOF_FILE="$WORK/$(basename "$f")"; fi
  fi
done

# 1. Verify and decode before anything else.
decode "$FILE" "$WORK/snapshot.rdb"
case "$REST" in *.rdb) ;; *) die "\`$(basename "$FILE")\` is not an RDB backup (expected .rdb, .rdb.zst or .rdb.gz, optionally .enc)" ;; esac
SNAPSHOT="$WORK/snapshot.rdb"
[ "$(head -c 5 "$SNAPSHOT")" = REDIS ] || die "the backup does not decode to an RDB snapshot; nothing was changed"
log "decoded $(wc -c <"$SNAPSHOT") bytes of RDB"
AOF_COPY=""
if [ -n "$AOF_FILE" ]; then
  decode "$AOF_FILE" "$WORK/aof.tar"
  case "$REST" in *.aof.tar) ;; *) die "\`$(basename "$AOF_FILE")\` is not an AOF copy (expected .aof.tar, then .zst or .gz, optionally .enc)" ;; esac
  mkdir "$WORK/unpacked"
  tar -C "$WORK/unpacked" -xf "$WORK/aof.tar" || die "cannot unpack the AOF copy; nothing was changed"
  rm -f "$WORK/aof.tar"
  AOF_COPY="$WORK/unpacked/aof"
  manifest="$(find "$AOF_COPY" -maxdepth 1 -name '*.manifest' -printf '%f\n' 2>/dev/null | head -n 1)"
  [ -n "$manifest" ] || die "the AOF copy has no manifest; nothing was changed"
  if [ -n "$TO_TIME" ]; then
    out="$(redis-check-aof --truncate-to-timestamp "$TO_TIME" "$AOF_COPY/$manifest" 2>&1)" \
      || die "redis-check-aof could not cut the AOF at $TO_TIME; nothing was changed: $(printf '%s' "$out" | tail -n 3)"
    log "cut the AOF at $TO_TIME: $(printf '%s' "$out" | grep -i 'truncat' | tail -n 1)"
  fi
fi
if [ -n "$DECODE_TO" ]; then
  mkdir -p "$DECODE_TO"
  mv "$SNAPSHOT" "$DECODE_TO/dump.rdb"
  if [ -n "$AOF_COPY" ]; then rm -rf "$DECODE_TO/aof"; mv "$AOF_COPY" "$DECODE_TO/aof"; fi
  log "decoded into $DECODE_TO; nothing else was done"
  printf '%s\n' "$DECODE_TO"
  exit 0
fi

# 2. Where the data lives, from the running server when it answers.
setup_cli
version=""
if [ "$OFFLINE" = 1 ]; then
  if ping_ok; then die "--offline, but Redis at $REDIS_HOST:$REDIS_PORT answers: stop it first; nothing was changed"; fi
  log "offline: the caller stops and starts Redis; using the given and rendered settings"
elif ping_ok; then
  version="$(info_field server redis_version)"
  [ -n "$REDIS_DATA_DIR" ] || REDIS_DATA_DIR="$(config_get dir)"
  [ -n "$RDB_FILENAME" ] || RDB_FILENAME="$(config_get dbfilename)"
  [ -n "$AOF_ENABLED" ] || AOF_ENABLED="$(config_get appendonly)"
  [ -n "$AOF_DIRNAME" ] || AOF_DIRNAME="$(config_get appenddirname)"
  [ -n "$AOF_FILENAME" ] || AOF_FILENAME="$(config_get appendfilename)"
  role="$(info_field replication role)"
  if [ "$role" = slave ] && [ "${RESTORE_ALLOW_REPLICA:-0}" != 1 ]; then
    die "$REDIS_HOST:$REDIS_PORT is a replica: it would resync from its master over the restore; restore the master (or set RESTORE_ALLOW_REPLICA=1); nothing was changed"
  fi
else
  log "Redis at $REDIS_HOST:$REDIS_PORT does not answer; using the rendered settings"
fi
REDIS_DATA_DIR="${REDIS_DATA_DIR:-$DEFAULT_REDIS_DATA_DIR}"
RDB_FILENAME="${RDB_FILENAME:-$DEFAULT_RDB_FILENAME}"
AOF_ENABLED="${AOF_ENABLED:-$DEFAULT_AOF_ENABLED}"
AOF_DIRNAME="${AOF_DIRNAME:-$DEFAULT_AOF_DIRNAME}"
AOF_FILENAME="${AOF_FILENAME:-appendonly.aof}"
major="${version%%.*}"
if ! is_uint "$major"; then major=7; fi
if [ ! -d "$REDIS_DATA_DIR" ] || [ ! -w "$REDIS_DATA_DIR" ]; then
  die "the data directory \`$REDIS_DATA_DIR\` is not a writable directory here: run $PROG where the node's data is, or set --data-dir"
fi

# Stage inside the data directory so the final moves are renames.
STAGE="$REDIS_DATA_DIR/.redplate-restore.tmp"
rm -rf "$STAGE"
mkdir "$STAGE"
STAGED+=("$STAGE")
if [ -n "$AOF_COPY" ]; then
  if [ "$AOF_ENABLED" != yes ] || [ "$major" -lt 7 ]; then
    die "--aof needs AOF on (appendonly yes) and Redis 7 (multi-part AOF); nothing was changed"
  fi
  cp -r "$AOF_COPY" "$STAGE/aof"
elif [ "$AOF_ENABLED" = yes ] && [ "$major" -ge 7 ]; then
  mkdir "$STAGE/aof"
  cp "$SNAPSHOT" "$STAGE/aof/$AOF_FILENAME.1.base.rdb"
  printf 'file %s seq 1 type b\n' "$AOF_FILENAME.1.base.rdb" >"$STAGE/aof/$AOF_FILENAME.manifest"
elif [ "$AOF_ENABLED" = yes ]; then
  cp "$SNAPSHOT" "$STAGE/aof.aof"
fi
cp "$SNAPSHOT" "$STAGE/dump.rdb"
sync "$STAGE" 2>/dev/null || sync

# 3. Stop the server without letting it save over the restored files.
if ping_ok; then
  if [ -n "$REDIS_STOP_CMD" ]; then
    log "stopping Redis: $REDIS_STOP_CMD"
    bash -c "$REDIS_STOP_CMD" || die "the stop command failed; nothing was changed"
  else
    log "stopping Redis with SHUTDOWN NOSAVE"
    if [ "$major" -ge 7 ]; then rcli SHUTDOWN NOSAVE NOW >/dev/null 2>&1 || true; else rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true; fi
  fi
  deadline=$((SECONDS + RESTORE_TIMEOUT))
  while ping_ok; do
    [ "$SECONDS" -lt "$deadline" ] || die "Redis is still running ${RESTORE_TIMEOUT}s after the stop request; nothing was changed"
    sleep 0.2
  done
fi
log "Redis is down"

# 4. Swap: keep the previous data aside, put the snapshot in place.
KEEP="$REDIS_DATA_DIR/.redplate-pre-restore"
rm -rf "$KEEP"
mkdir "$KEEP"
if [ -e "$REDIS_DATA_DIR/$RDB_FILENAME" ]; then mv "$REDIS_DATA_DIR/$RDB_FILENAME" "$KEEP/"; fi
if [ -e "$REDIS_DATA_DIR/$AOF_DIRNAME" ]; then mv "$REDIS_DATA_DIR/$AOF_DIRNAME" "$KEEP/"; fi
if [ -e "$REDIS_DATA_DIR/$AOF_FILENAME" ]; then mv "$REDIS_DATA_DIR/$AOF_FILENAME" "$KEEP/"; fi
mv "$STAGE/dump.rdb" "$REDIS_DATA_DIR/$RDB_FILENAME"
if [ -d "$STAGE/aof" ]; then mv "$STAGE/aof" "$REDIS_DATA_DIR/$AOF_DIRNAME"; fi
if [ -e "$STAGE/aof.aof" ]; then mv "$STAGE/aof.aof" "$REDIS_DATA_DIR/$AOF_FILENAME"; fi
rm -rf "$STAGE"
STAGED=()
log "snapshot in place (previous data in $KEEP)"

if [ "$OFFLINE" = 1 ]; then
  log "restored the files of $(basename "$FILE"); the caller starts Redis"
  exit 0
fi

# 5. Start again and wait until the data set is loaded.
log "starting Redis: $REDIS_START_CMD"
bash -c "$REDIS_START_CMD" || die "the start command failed; the previous data is in $KEEP"
deadline=$((SECONDS + RESTORE_TIMEOUT))
until ping_ok && [ "$(info_field persistence loading)" = 0 ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "Redis did not come back within ${RESTORE_TIMEOUT}s; check its log (the previous data is in $KEEP)"
  sleep 0.2
done
keys="$(rcli DBSIZE | tr -d '\r')"
log "restored: $keys keys in db 0 from $(basename "$FILE")"
