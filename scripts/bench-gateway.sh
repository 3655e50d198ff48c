#!/usr/bin/env bash
# The tenant gateway's cost, side by side with Redis directly, in one run:
# redis-benchmark (Debian's redis-tools) as tenant `bench`, SET and GET of
# `tenant:bench:key:__rand_int__`, 50 clients, with pipelining (-P 16) and
# without, once straight to redis-server and once through the gateway,
# alternating, ROUNDS times; prints each run and the medians.
#   scripts/bench-gateway.sh [REQUESTS] [ROUNDS]    # default 200000 requests, 3 rounds
# REDPLATE_BIN picks the binary (default: a release build, built here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
requests=${1:-200000}
rounds=${2:-3}
if [ -z "${REDPLATE_BIN:-}" ]; then
  cargo build --release -q -p redplate
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/redplate
else
  bin=$REDPLATE_BIN
fi
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home
cleanup() {
  "$bin" destroy gwbench --purge --quiet 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/gwbench.yaml" <<YAML
extends: development
deployment: { name: gwbench }
security: { auth_enabled: true, password: { generate: true } }
resources: { memory: 2gb }
memory: { maxmemory: 1gb }
tenancy:
  enabled: true
  gateway: true
  max_tenants: 1
  memory_per_tenant: 512mb
  connections_per_tenant: 1000
  ops_per_second_per_tenant: 10000000
  tenants:
    - id: bench
cache:
  strategy: cache-aside
  default_ttl: 0s
  patterns:
    - { pattern: "tenant:*:session:*", ttl: 30m }
YAML
"$bin" deploy "$work/gwbench.yaml" --set network.local_base_port=26800 --quiet >/dev/null
direct=26800
gateway=26809
pw=$(cat "$REDPLATE_HOME/deployments/gwbench/secrets/tenant-bench.password")

# One redis-benchmark run: prints "rps p50_ms".
run() {
  local port=$1 pipeline=$2 cmd=$3
  local args=(SET tenant:bench:key:__rand_int__ xxxxxxxxxxxxxxxx)
  [ "$cmd" = GET ] && args=(GET tenant:bench:key:__rand_int__)
  # A key a cache rule covers: the gateway adds its TTL (a `decide` per write).
  [ "$cmd" = SET-TTL ] && args=(SET tenant:bench:session:__rand_int__ xxxxxxxxxxxxxxxx)
  redis-benchmark -p "$port" --user tenant-bench -a "$pw" -c 50 -n "$requests" -r 100000 -P "$pipeline" --csv \
    "${args[@]}" 2>/dev/null | tail -1 | tr -d '"' | awk -F, '{print $2, $5}'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "redis-benchmark -c 50 -n $requests, $rounds rounds, $(nproc) cores; rps and p50 (ms) per run"
for pipeline in 16 1; do
  for cmd in SET GET SET-TTL; do
    : > "$work/d"; : > "$work/g"
    for _ in $(seq "$rounds"); do
      run $direct $pipeline $cmd >> "$work/d"
      run $gateway $pipeline $cmd >> "$work/g"
    done
    d_rps=$(awk '{print $1}' "$work/d" | median); g_rps=$(awk '{print $1}' "$work/g" | median)
    d_p50=$(awk '{print $2}' "$work/d" | median); g_p50=$(awk '{print $2}' "$work/g" | median)
    printf '%-7s -P %-2s direct %10.0f rps p50 %.3f ms | gateway %10.0f rps p50 %.3f ms | %.2fx throughput, +%.0f us p50\n' \
      "$cmd" "$pipeline" "$d_rps" "$d_p50" "$g_rps" "$g_p50" "$(echo "$g_rps / $d_rps" | bc -l)" "$(echo "($g_p50 - $d_p50) * 1000" | bc -l)"
  done
done
pid=$(pgrep -f "redplate gateway gwbench" | head -1 || true)
[ -n "$pid" ] && echo "gateway peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")"
