#!/usr/bin/env bash
# `redplate warm` of KEYS keys (default 1,000,000) against `redis-cli --pipe`
# of the same data, in the same run, on a deployment with a replica
# (replication mode, development preset, cache-aside with a 10m default TTL
# and ±10 % jitter):
#   - the data: `bench:<i>` → a 32-byte value; a JSONL file without TTLs
#     for `warm` (the strategy decides each key's TTL through the plugin's
#     `decide`), and the same keys as `SET k v PX <ttl>` in RESP for
#     `redis-cli --pipe` (TTL 10m ± 10 %, drawn here);
#   - each tool: hyperfine, RUNS runs (default 3), FLUSHALL before each;
#   - reported: keys/s of each (from the mean), the ratio (target ≥ 0.5),
#     `sync_full` of the master before and after everything (target: no
#     full resync of the replica), and that the replica holds every key;
#   scripts/bench-warm.sh [KEYS] [RUNS]
# Needs redis-server, redis-cli, hyperfine, python3 and a release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
keys=${1:-1000000}
runs=${2:-3}
# REDPLATE_BIN: an already built binary (skips the build).
if [ -z "${REDPLATE_BIN:-}" ]; then cargo build --release -q -p redplate; fi
bin=${REDPLATE_BIN:-$PWD/target/release/redplate}
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home
cleanup() {
  "$bin" destroy bench-warm --purge --quiet 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/warm.yaml" <<'EOF'
extends: development
deployment: { name: bench-warm, mode: replication }
replication: { replicas: 1 }
network: { local_base_port: 23700 }
resources: { memory: 2gb }
cache:
  strategy: cache-aside
  default_ttl: 10m
  jitter_percent: 10
EOF
"$bin" deploy "$work/warm.yaml" --quiet --format json > "$work/record.json"
read -r master replica < <(python3 -c '
import json, sys
nodes = json.load(open(sys.argv[1]))["nodes"]
print(next(n["port"] for n in nodes if n["role"] == "master"), next(n["port"] for n in nodes if n["role"] == "replica"))
' "$work/record.json")
cli=(redis-cli -p "$master")

python3 - "$keys" "$work" <<'EOF'
import random, sys
n, work = int(sys.argv[1]), sys.argv[2]
value = "x" * 32
with open(f"{work}/keys.jsonl", "w") as jsonl, open(f"{work}/keys.resp", "w", newline="") as resp:
    for i in range(n):
        k = f"bench:{i}"
        jsonl.write(f'{{"key":"{k}","value":"{value}"}}\n')
        ttl = str(600_000 + random.randint(-60_000, 60_000))
        resp.write(f"*5\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(value)}\r\n{value}\r\n$2\r\nPX\r\n${len(ttl)}\r\n{ttl}\r\n")
EOF

# Compile the strategy plugin into the cache first, as any second run finds it.
echo '{"key":"prime","value":"x"}' > "$work/prime.jsonl"
"$bin" warm bench-warm --from "$work/prime.jsonl" --quiet > /dev/null

sync_full() { "${cli[@]}" info stats | tr -d '\r' | awk -F: '/^sync_full:/ {print $2}'; }
before=$(sync_full)
hyperfine --runs "$runs" --export-json "$work/times.json" \
  --prepare "${cli[*]} flushall > /dev/null" \
  -n "redis-cli --pipe" "${cli[*]} --pipe < $work/keys.resp > /dev/null" \
  -n "redplate warm" "$bin warm bench-warm --from $work/keys.jsonl --restart --quiet > $work/warm.out"
after=$(sync_full)
"${cli[@]}" wait 1 10000 > /dev/null
master_keys=$("${cli[@]}" dbsize)
replica_keys=$(redis-cli -p "$replica" dbsize)
python3 - "$work/times.json" "$keys" <<'EOF'
import json, sys
times = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
n = int(sys.argv[2])
pipe, warm = n / times["redis-cli --pipe"], n / times["redplate warm"]
print(f"redis-cli --pipe: {pipe:,.0f} keys/s ({times['redis-cli --pipe']:.2f} s)")
print(f"redplate warm:    {warm:,.0f} keys/s ({times['redplate warm']:.2f} s)")
print(f"ratio: {warm / pipe:.2f}x (target >= 0.5x)")
EOF
cat "$work/warm.out"
echo "sync_full of the master: $before before, $after after (full resyncs: $((after - before)))"
echo "keys: master $master_keys, replica $replica_keys (expected $keys)"
sample=$("${cli[@]}" pttl bench:12345 2>/dev/null || true)
echo "PTTL of bench:12345 after the last warm: $sample ms (10m ± 10 %)"
