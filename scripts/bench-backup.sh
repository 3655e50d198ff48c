#!/usr/bin/env bash
# Time of `redplate backup` and `redplate restore` with 1,000,000 keys
# (hyperfine, whole process) on a local deployment of 1 master + 1 replica
# with mixed persistence and AOF timestamps, backups compressed with zstd:
#   - backup: BGSAVE on the replica, copy RDB + AOF folder, compress, checksum, verify
#   - restore preview: decode the backup, load it into a scratch server, count (no token)
#   - restore: the preview, then the confirmed restore (stop, place, start,
#     replica resync, DEBUG DIGEST check)
#   - restore --to-time: the same, from the AOF cut at a second
#   scripts/bench-backup.sh [RUNS] [KEYS]   # default 3 runs, 1000000 keys
# REDPLATE_BIN=path uses that binary instead of a release build made here.
# Needs redis-server, redis-cli, zstd and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
runs=${1:-3}
keys=${2:-1000000}
if [ -n "${REDPLATE_BIN:-}" ]; then
  bin=$REDPLATE_BIN
else
  cargo build --release -q -p redplate
  bin=$PWD/target/release/redplate
fi
work=$(mktemp -d)
export REDPLATE_HOME=$work/home REDPLATE_CACHE_DIR=$work/cache
name=bench-backup
cleanup() {
  "$bin" destroy "$name" --purge --quiet 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/t.yaml" <<EOF
deployment: { name: $name, mode: replication }
replication: { replicas: 1 }
persistence:
  mode: mixed
  save: [{ seconds: 900, changes: 1 }]
  aof_timestamp_enabled: true
  # No AOF rewrite during the run: the noted second stays in the AOF's span.
  auto_aof_rewrite_percentage: 0
performance: { enable_debug_command: local }
network: { local_base_port: 23400 }
EOF
"$bin" deploy "$work/t.yaml" --quiet >/dev/null
port=$("$bin" status "$name" --format json | sed -n 's/.*"port": \([0-9]*\).*/\1/p' | head -n 1)
echo "== filling $keys keys (redis-cli --pipe) on port $port"
awk -v n="$keys" 'BEGIN { for (i = 0; i < n; i++) printf "SET key:%d value-%d-abcdefghijklmnopqrstuvwxyz\r\n", i, i }' \
  | redis-cli -p "$port" --pipe >/dev/null
# The backup is read from the replica: wait until it has every key.
replica=$((port + 10))
until [ "$(redis-cli -p "$replica" DBSIZE)" = "$(redis-cli -p "$port" DBSIZE)" ]; do sleep 0.5; done
noted=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.2
printf 'SET after-noted 1\r\nWAIT 1 10000\r\n' | redis-cli -p "$port" >/dev/null
echo "keys: $(redis-cli -p "$port" DBSIZE)"

echo "== backup"
hyperfine --runs "$runs" --export-json "$work/backup.json" "$bin backup $name"
id=$("$bin" backup "$name")
"$bin" backups "$name" | tail -n 1
du -sh "$work/home/deployments/$name/data/$name-0"

confirmed() { # extra arguments of restore
  printf "tok=\$(%s restore %s %s %s 2>/dev/null | awk '{print \$NF}') && %s restore %s %s %s --confirm \"\$tok\"" \
    "$bin" "$name" "$id" "$1" "$bin" "$name" "$id" "$1"
}
"$bin" restore "$name" "$id" >/dev/null
echo "== restore (preview only, then preview + confirmed restore)"
hyperfine --runs "$runs" --export-json "$work/restore.json" \
  -n preview "$bin restore $name $id" \
  -n restore "$(confirmed "")" \
  -n "restore --to-time" "$(confirmed "--to-time $noted")"
echo "keys after the last restore (--to-time $noted): $(redis-cli -p "$port" DBSIZE)"
