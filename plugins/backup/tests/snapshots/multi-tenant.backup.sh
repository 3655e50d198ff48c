#!/usr/bin/env bash
# backup.sh for `saas-cache`, rendered by redplate: change the template, not this file.
#
# Backs up one Redis node: BGSAVE and wait for it to finish (bounded), copy
# the RDB (from the data directory when it is on this machine, otherwise
# streamed with `redis-cli --rdb`, which works remotely), compress, encrypt,
# write a `.sha256`, verify, upload when a bucket is set, prune by retention.
# With AOF on (BACKUP_AOF=yes) and the data directory here, the node's
# append-only folder (Redis 7: manifest, base and incr files) is kept too, as
# `<name>.aof.tar[.zst|.gz][.enc]` beside the RDB: with `aof-timestamp-enabled`
# it is what restore.sh --to-time replays up to a given second.
# Prints the path of the new backup on stdout; logs go to stderr.
set -euo pipefail
PROG=backup.sh

# --- settings (environment variables win over the rendered defaults) --------
# Exported so REDIS_START_CMD / REDIS_STOP_CMD can name rendered files.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export SCRIPT_DIR
DEFAULT_REDIS_HOST='127.0.0.1'
DEFAULT_REDIS_PORT='7011'
DEFAULT_REDIS_TLS='1'
DEFAULT_REDIS_CACERT='/etc/redis/tls/ca.crt'
DEFAULT_REDIS_CERT=''
DEFAULT_REDIS_KEY=''
DEFAULT_REDIS_USER='backup'
DEFAULT_REDIS_PASSWORD_FILE="$SCRIPT_DIR/../secrets/backup.password"
DEFAULT_REDIS_DATA_DIR="$SCRIPT_DIR/../data/saas-cache-1"
DEFAULT_RDB_FILENAME='dump.rdb'
DEFAULT_BACKUP_DIR='/backups'
DEFAULT_BACKUP_S3_URL=''
DEFAULT_BACKUP_PREFIX='saas-cache'
DEFAULT_BACKUP_COMPRESSION='zstd'
DEFAULT_BACKUP_COMPRESSION_LEVEL='3'
DEFAULT_BACKUP_ENCRYPT='1'
DEFAULT_BACKUP_KEY_FILE='/run/secrets/redis/backup.key'
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

DEFAULT_BACKUP_RETENTION_COUNT='14'
DEFAULT_BACKUP_RETENTION_AGE='0'
DEFAULT_BACKUP_VERIFY='1'
DEFAULT_BACKUP_AOF='yes'
DEFAULT_AOF_DIRNAME='appendonlydir'
BACKUP_RETENTION_COUNT="${BACKUP_RETENTION_COUNT:-$DEFAULT_BACKUP_RETENTION_COUNT}"
BACKUP_RETENTION_AGE="${BACKUP_RETENTION_AGE:-$DEFAULT_BACKUP_RETENTION_AGE}"
BACKUP_VERIFY="${BACKUP_VERIFY:-$DEFAULT_BACKUP_VERIFY}"
BACKUP_METHOD="${BACKUP_METHOD:-auto}"
BACKUP_AOF="${BACKUP_AOF:-$DEFAULT_BACKUP_AOF}"
AOF_DIRNAME="${AOF_DIRNAME:-}"

usage() {
  cat <<EOF
Usage: $PROG [--help]

Takes a compressed, optionally encrypted, checksummed RDB backup of one Redis
node of \`saas-cache\`. Every setting is an environment variable (default in brackets):

  REDIS_HOST, REDIS_PORT      the node to back up [$DEFAULT_REDIS_HOST:$DEFAULT_REDIS_PORT]
  REDIS_TLS                   1 to speak TLS [$DEFAULT_REDIS_TLS]
  REDIS_CACERT                CA certificate for TLS [$DEFAULT_REDIS_CACERT]
  REDIS_CERT, REDIS_KEY       client certificate and key, when the server asks for one
  REDIS_USER                  ACL user [$DEFAULT_REDIS_USER]
  REDIS_PASSWORD_FILE         file holding the password, sent as REDISCLI_AUTH [$DEFAULT_REDIS_PASSWORD_FILE]
  REDIS_DATA_DIR              the node's data directory, when on this machine [CONFIG GET dir]
  BACKUP_METHOD               auto | datadir | rdb (redis-cli --rdb) [auto]
  BACKUP_DIR                  where backups are written [$DEFAULT_BACKUP_DIR]
  BACKUP_S3_URL               also upload to this s3:// prefix (needs aws) [$DEFAULT_BACKUP_S3_URL]
  BACKUP_PREFIX               file name prefix, one per cluster shard [$DEFAULT_BACKUP_PREFIX]
  BACKUP_COMPRESSION          zstd | gzip | none [$DEFAULT_BACKUP_COMPRESSION]
  BACKUP_COMPRESSION_LEVEL    [$DEFAULT_BACKUP_COMPRESSION_LEVEL]
  BACKUP_ENCRYPT              1 to encrypt with AES-256 (openssl, PBKDF2) [$DEFAULT_BACKUP_ENCRYPT]
  BACKUP_KEY_FILE             file holding the encryption key [$DEFAULT_BACKUP_KEY_FILE]
  BACKUP_KEY_ENV              or: name of a variable holding it [$DEFAULT_BACKUP_KEY_ENV]
  BACKUP_RETENTION_COUNT      backups kept [$DEFAULT_BACKUP_RETENTION_COUNT]
  BACKUP_RETENTION_AGE        delete backups older than this many seconds, 0 keeps by count only [$DEFAULT_BACKUP_RETENTION_AGE]
  BACKUP_VERIFY               1 to re-read the backup after writing it [$DEFAULT_BACKUP_VERIFY]
  BACKUP_TIMEOUT              seconds to wait for BGSAVE [$DEFAULT_BACKUP_TIMEOUT]
  BACKUP_AOF                  yes to keep a copy of the AOF folder too (needs the data directory) [$DEFAULT_BACKUP_AOF]
  AOF_DIRNAME                 the AOF folder in the data directory [CONFIG GET appenddirname, else $DEFAULT_AOF_DIRNAME]

Exit status: 0 on success, 1 on any failure (nothing half-written is left).
EOF
}

for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument \`$arg\` (see --help)" ;;
  esac
done

check_common_settings
if ! is_uint "$BACKUP_RETENTION_COUNT" || [ "$BACKUP_RETENTION_COUNT" -lt 1 ]; then die "BACKUP_RETENTION_COUNT must be at least 1"; fi
is_uint "$BACKUP_RETENTION_AGE" || die "BACKUP_RETENTION_AGE must be a number of seconds"
case "$BACKUP_COMPRESSION" in
  zstd) need zstd "BACKUP_COMPRESSION=zstd; install zstd or set BACKUP_COMPRESSION=gzip" ;;
  gzip) need gzip "BACKUP_COMPRESSION=gzip" ;;
  none) ;;
  *) die "BACKUP_COMPRESSION must be zstd, gzip or none, got \`$BACKUP_COMPRESSION\`" ;;
esac
if ! is_uint "$BACKUP_COMPRESSION_LEVEL" || [ "$BACKUP_COMPRESSION_LEVEL" -lt 1 ]; then die "BACKUP_COMPRESSION_LEVEL must be at least 1"; fi
if [ "$BACKUP_ENCRYPT" = 1 ]; then
  need openssl "BACKUP_ENCRYPT=1"
  PASS_ARG="$(openssl_pass)"
fi
if [ -n "$BACKUP_S3_URL" ]; then need aws "BACKUP_S3_URL is set"; fi
case "$BACKUP_METHOD" in auto | datadir | rdb) ;; *) die "BACKUP_METHOD must be auto, datadir or rdb" ;; esac
case "$BACKUP_AOF" in yes | no) ;; *) die "BACKUP_AOF must be yes or no, got \`$BACKUP_AOF\`" ;; esac
setup_cli

mkdir -p "$BACKUP_DIR"
WORK="$(mktemp -d "$BACKUP_DIR/.backup.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

pong="$(rcli PING 2>&1 | tr -d '\r')" || true
[ "$pong" = PONG ] || die "cannot reach Redis at $REDIS_HOST:$REDIS_PORT: $pong"

# 1. BGSAVE, and wait until a save that started after now has finished.
before="$(rcli LASTSAVE | tr -d '\r')"
now="$(rcli TIME | tr -d '\r' | sed -n '1p')"
if ! is_uint "$before" || ! is_uint "$now"; then die "unexpected LASTSAVE/TIME replies: \`$before\` \`$now\`"; fi
# LASTSAVE has one-second resolution: make sure ours will be newer.
if [ "$before" -ge "$now" ]; then sleep 1; fi
reply="$(rcli BGSAVE SCHEDULE 2>&1 | tr -d '\r')" || true
case "$reply" in
  *"Background saving started"* | *"scheduled"* | *"already in progress"*) log "BGSAVE: $reply" ;;
  *) die "BGSAVE failed: $reply" ;;
esac
deadline=$((SECONDS + BACKUP_TIMEOUT))
while :; do
  in_progress="$(info_field persistence rdb_bgsave_in_progress)"
  last="$(rcli LASTSAVE | tr -d '\r')"
  if [ "$in_progress" = 0 ] && is_uint "$last" && [ "$last" -gt "$before" ]; then
    status="$(info_field persistence rdb_last_bgsave_status)"
    [ "$status" = ok ] || die "BGSAVE finished with status \`$status\` (see the Redis log)"
    break
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "BGSAVE did not finish within ${BACKUP_TIMEOUT}s (rdb_bgsave_in_progress=$in_progress); raise BACKUP_TIMEOUT"
  fi
  sleep 1
done
log "BGSAVE finished (LASTSAVE $last)"

# 2. Copy the RDB: from the data directory when it is here, else over the wire.
RAW="$WORK/dump.rdb"
data_dir="$REDIS_DATA_DIR"
rdb_name="$RDB_FILENAME"
if [ "$BACKUP_METHOD" != rdb ]; then
  [ -n "$data_dir" ] || data_dir="$(config_get dir)"
  [ -n "$data_dir" ] || data_dir="$DEFAULT_REDIS_DATA_DIR"
  [ -n "$rdb_name" ] || rdb_name="$(config_get dbfilename)"
  [ -n "$rdb_name" ] || rdb_name="$DEFAULT_RDB_FILENAME"
fi
if [ "$BACKUP_METHOD" != rdb ] && [ -r "$data_dir/$rdb_name" ]; then
  cp "$data_dir/$rdb_name" "$RAW"
  log "copied $data_dir/$rdb_name"
elif [ "$BACKUP_METHOD" = datadir ]; then
  die "cannot read $data_dir/$rdb_name; set REDIS_DATA_DIR or use BACKUP_METHOD=rdb"
else
  rcli --rdb "$RAW" >"$WORK/rdb.log" 2>&1 || die "redis-cli --rdb failed: $(cat "$WORK/rdb.log")"
  log "streamed the RDB with redis-cli --rdb"
fi
[ "$(head -c 5 "$RAW")" = REDIS ] || die "the copied file is not an RDB snapshot"

# 2b. The AOF folder (Redis 7 multi-part AOF): the manifest first, then the
# files it names; a rewrite meanwhile replaces them, so try again.
AOF_RAW=""
if [ "$BACKUP_AOF" = yes ] && [ "$BACKUP_METHOD" != rdb ]; then
  [ -n "$AOF_DIRNAME" ] || AOF_DIRNAME="$(config_get appenddirname)"
  [ -n "$AOF_DIRNAME" ] || AOF_DIRNAME="$DEFAULT_AOF_DIRNAME"
  src="$data_dir/$AOF_DIRNAME"
  manifest="$(find "$src" -maxdepth 1 -name '*.manifest' -printf '%f\n' 2>/dev/null | head -n 1)"
  if [ -z "$manifest" ]; then
    log "warning: no AOF manifest in $src; the backup has the RDB only (no point-in-time restore)"
  else
    for attempt in 1 2 3 4 5; do
      rm -rf "$WORK/aof"
      mkdir "$WORK/aof"
      cp "$src/$manifest" "$WORK/aof/" || die "cannot copy $src/$manifest"
      ok=1
      while read -r f; do
        cp "$src/$f" "$WORK/aof/" 2>/dev/null || { ok=0; break; }
      done < <(sed -n 's/^file \([^ ]*\) .*/\1/p' "$WORK/aof/$manifest")
      if [ "$ok" = 1 ]; then break; fi
      [ "$attempt" -lt 5 ] || die "the AOF in $src kept changing while being copied (rewrites); try again"
      log "the AOF was rewritten while being copied; copying again"
      sleep 1
    done
    tar -C "$WORK" -cf "$WORK/aof.tar" aof || die "cannot archive the AOF copy"
    rm -rf "$WORK/aof"
    AOF_RAW="$WORK/aof.tar"
    log "copied the AOF folder $src ($manifest)"
  fi
fi

# 3. Compress, then encrypt.
# Names sort by time; a second backup within the same second waits for the next.
while :; do
  name="$BACKUP_PREFIX-$(date -u +%Y%m%dT%H%M%SZ).rdb"
  if ! compgen -G "$BACKUP_DIR/$name*" >/dev/null; then break; fi
  sleep 1
done
# encode FILE NAME: compress, then encrypt FILE; sets `cur` and `name` to the result.
encode() {
  cur="$1"
  name="$2"
  case "$BACKUP_COMPRESSION" in
    zstd)
      zstd -q -"$BACKUP_COMPRESSION_LEVEL" -o "$cur.zst" "$cur" || die "zstd failed"
      rm -f "$cur"
      cur="$cur.zst"
      name="$name.zst"
      ;;
    gzip)
      level="$BACKUP_COMPRESSION_LEVEL"
      if [ "$level" -gt 9 ]; then level=9; fi
      gzip -c -"$level" "$cur" >"$cur.gz" || die "gzip failed"
      rm -f "$cur"
      cur="$cur.gz"
      name="$name.gz"
      ;;
    none) ;;
  esac
  if [ "$BACKUP_ENCRYPT" = 1 ]; then
    openssl "${OPENSSL_ARGS[@]}" -in "$cur" -out "$cur.enc" -pass "$PASS_ARG" || die "encryption failed"
    rm -f "$cur"
    cur="$cur.enc"
    name="$name.enc"
  fi
}
# checksum_into_place FILE NAME: write NAME.sha256, then rename both into BACKUP_DIR.
checksum_into_place() {
  local sum
  sum="$(sha256sum "$1" | cut -d' ' -f1)"
  printf '%s  %s\n' "$sum" "$2" >"$WORK/sum"
  mv "$1" "$BACKUP_DIR/$2"
  mv "$WORK/sum" "$BACKUP_DIR/$2.sha256"
}
stem="${name%.rdb}"
aof_name=""
if [ -n "$AOF_RAW" ]; then
  encode "$AOF_RAW" "$stem.aof.tar"
  # The AOF copy goes first: the RDB's arrival marks the backup complete.
  checksum_into_place "$cur" "$name"
  aof_name="$name"
  log "wrote $BACKUP_DIR/$name"
fi
encode "$RAW" "$stem.rdb"

# 4. Checksum, then move both files into place (rename: never half-written).
checksum_into_place "$cur" "$name"
log "wrote $BACKUP_DIR/$name"

# 5. Verify: checksum, then the whole decode chain.
if [ "$BACKUP_VERIFY" = 1 ]; then
  (cd "$BACKUP_DIR" && sha256sum --quiet -c "$name.sha256") || die "checksum verification failed for $name"
  decode() {
    if [ "$BACKUP_ENCRYPT" = 1 ]; then openssl "${OPENSSL_ARGS[@]}" -d -in "$BACKUP_DIR/$name" -pass "$PASS_ARG"; else cat "$BACKUP_DIR/$name"; fi
  }
  case "$BACKUP_COMPRESSION" in
    zstd) decode | zstd -q -d -c >"$WORK/check" || die "verification failed: $name does not decrypt and decompress" ;;
    gzip) decode | gzip -d -c >"$WORK/check" || die "verification failed: $name does not decrypt and decompress" ;;
    none) decode >"$WORK/check" || die "verification failed: $name does not decrypt" ;;
  esac
  [ "$(head -c 5 "$WORK/check")" = REDIS ] || die "verification failed: $name does not decode to an RDB snapshot"
  rm -f "$WORK/check"
  log "verified $name"
fi

# 6. Upload.
if [ -n "$BACKUP_S3_URL" ]; then
  aws s3 cp --only-show-errors "$BACKUP_DIR/$name" "${BACKUP_S3_URL%/}/$name"
  aws s3 cp --only-show-errors "$BACKUP_DIR/$name.sha256" "${BACKUP_S3_URL%/}/$name.sha256"
  if [ -n "$aof_name" ]; then
    aws s3 cp --only-show-errors "$BACKUP_DIR/$aof_name" "${BACKUP_S3_URL%/}/$aof_name"
    aws s3 cp --only-show-errors "$BACKUP_DIR/$aof_name.sha256" "${BACKUP_S3_URL%/}/$aof_name.sha256"
  fi
  log "uploaded to ${BACKUP_S3_URL%/}/$name"
fi

# 7. Prune: keep the newest BACKUP_RETENTION_COUNT (names sort by time), and
# drop older than BACKUP_RETENTION_AGE; the backup just made is always kept.
mapfile -t backups < <(find "$BACKUP_DIR" -maxdepth 1 -type f -name "$BACKUP_PREFIX-*.rdb*" ! -name '*.sha256' -printf '%f\n' | LC_ALL=C sort -r)
i=0
for b in "${backups[@]}"; do
  i=$((i + 1))
  [ "$b" = "$name" ] && continue
  old=0
  if [ "$i" -gt "$BACKUP_RETENTION_COUNT" ]; then old=1; fi
  if [ "$BACKUP_RETENTION_AGE" -gt 0 ] && [ -n "$(find "$BACKUP_DIR/$b" -mmin +"$((BACKUP_RETENTION_AGE / 60))")" ]; then old=1; fi
  if [ "$old" = 1 ]; then
    rm -f "$BACKUP_DIR/$b" "$BACKUP_DIR/$b.sha256"
    # Its AOF copy, if any, goes with it.
    find "$BACKUP_DIR" -maxdepth 1 -type f -name "${b%%.rdb*}.aof.tar*" -delete
    log "pruned $b"
    if [ -n "$BACKUP_S3_URL" ]; then
      aws s3 rm --only-show-errors "${BACKUP_S3_URL%/}/$b" || log "warning: could not delete ${BACKUP_S3_URL%/}/$b"
      aws s3 rm --only-show-errors "${BACKUP_S3_URL%/}/$b.sha256" || true
    fi
  fi
done

printf '%s\n' "$BACKUP_DIR/$name"
