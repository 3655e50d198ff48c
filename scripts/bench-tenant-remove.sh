#!/usr/bin/env bash
# `redplate tenant remove` of one tenant's keys with another tenant's keys
# beside it (a standalone deployment, development preset, auth on), while
# another client's GET latency is measured:
#   - KEYS keys for tenant `a` and KEYS for tenant `b` (default 1,000,000
#     each), loaded with `redis-cli --pipe`;
#   - baseline: redis-benchmark GET, 1 connection, before the removal;
#   - during: the same benchmark run back to back while `tenant remove`
#     runs (each run's p99; the worst and the median reported);
#   - target: removal ≤ 30 s, GET p99 within 2 ms of the baseline;
#   - afterwards: tenant `a` has 0 keys, tenant `b` still has all of its.
#   scripts/bench-tenant-remove.sh [KEYS]
# Needs redis-server, redis-cli, redis-benchmark and a release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
keys=${1:-1000000}
cargo build --release -q -p redplate
bin=$PWD/target/release/redplate
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home
cleanup() {
  if [ -n "${bench_pid:-}" ]; then touch "$work/stop"; wait "$bench_pid" || true; fi
  "$bin" destroy bench-tenants --purge --quiet 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/tenants.yaml" <<'EOF'
extends: development
deployment: { name: bench-tenants }
network: { local_base_port: 23500 }
resources: { memory: 2gb }
security: { auth_enabled: true, password: { generate: true } }
tenancy: { enabled: true, max_tenants: 4, memory_per_tenant: 256mb }
EOF
"$bin" deploy "$work/tenants.yaml" --quiet --format json > "$work/record.json"
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["port"])' "$work/record.json")
state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state_dir"])' "$work/record.json")
REDISCLI_AUTH=$(cat "$state/secrets/redplate-admin.password")
export REDISCLI_AUTH
cli=(redis-cli -p "$port" --user redplate-admin --no-auth-warning)
"$bin" tenant create bench-tenants a --quiet > /dev/null
"$bin" tenant create bench-tenants b --quiet > /dev/null

load() { # tenant
  awk -v n="$keys" -v t="$1" 'BEGIN {
    for (i = 0; i < n; i++) {
      k = "tenant:" t ":" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n", length(k), k
    }
  }' | "${cli[@]}" --pipe | tail -1
}
echo "loading $keys keys for tenant a and $keys for tenant b"
load a
load b
echo "keys: $("${cli[@]}" DBSIZE), used memory: $("${cli[@]}" INFO memory | grep '^used_memory_human' | tr -d '\r')"

# One closed-loop client doing GETs; p99 in ms from the CSV summary.
get_p99() { # requests
  redis-benchmark -p "$port" --user redplate-admin -a "$REDISCLI_AUTH" -t get -c 1 -n "$1" --csv --precision 3 2>/dev/null \
    | awk -F'","' '/"GET"/ { gsub(/"/, "", $7); print $7 }'
}
baseline=$(for _ in 1 2 3; do get_p99 20000; done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "baseline GET p99: ${baseline} ms (median of 3 runs of 20000)"

# Redis's own view of our commands: every command over 500 µs in the slow log.
"${cli[@]}" CONFIG SET slowlog-log-slower-than 500 > /dev/null
"${cli[@]}" CONFIG SET slowlog-max-len 100000 > /dev/null
"${cli[@]}" SLOWLOG RESET > /dev/null
( while [ ! -e "$work/stop" ]; do get_p99 5000; done ) > "$work/during.txt" &
bench_pid=$!
sleep 1
start=$(date +%s.%N)
"$bin" tenant remove bench-tenants a --format json > "$work/removed.json"
end=$(date +%s.%N)
touch "$work/stop"
wait "$bench_pid" || true
bench_pid=

"${cli[@]}" SLOWLOG GET 100000 > "$work/slowlog.txt"

python3 - "$work/removed.json" "$work/during.txt" "$baseline" "$start" "$end" "$work/slowlog.txt" <<'EOF'
import json, statistics, sys
removed = json.load(open(sys.argv[1]))
p99 = [float(l) for l in open(sys.argv[2]) if l.strip()]
baseline = float(sys.argv[3])
wall = float(sys.argv[5]) - float(sys.argv[4])
print(f"tenant remove: {removed['deleted']} keys deleted in {wall:.1f} s wall ({removed['seconds']:.1f} s in the operation)")
if p99:
    print(f"GET p99 during the removal: worst {max(p99):.3f} ms, median {statistics.median(p99):.3f} ms "
          f"over {len(p99)} runs of 5000 (baseline {baseline:.3f} ms; worst - baseline = {max(p99) - baseline:.3f} ms)")
    print("  each run's p99 (ms):", " ".join(f"{x:.2f}" for x in sorted(p99)))
# `redis-cli SLOWLOG GET` lines: id, time, duration in µs, then the command's words.
lines = [l.strip() for l in open(sys.argv[6])]
slow = [int(lines[i + 2]) for i in range(len(lines) - 2)
        if lines[i].isdigit() and lines[i + 1].isdigit() and lines[i + 2].isdigit() and len(lines[i + 1]) == 10]
print(f"server side: {len(slow)} commands over 500 µs, the longest {max(slow, default=0)} µs")
EOF
echo "left: tenant a $("${cli[@]}" --scan --pattern 'tenant:a:*' | wc -l) keys, tenant b $("${cli[@]}" DBSIZE) keys in total"
