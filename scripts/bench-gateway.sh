#!/usr/bin/env bash
# The tenant gateway's cost, side by side with Redis directly, in one run:
# redis-benchmark (Debian's redis-tools) as tenant `bench`, SET and GET of
# `tenant:bench:key:__rand_int__`, 50 clients, with pipelining (-P 16) and
# without, once straight to redis-server and once through the gateway,
# alternating, ROUNDS times; prints each run and the medians.
#   scripts/bench-gateway.sh [REQUESTS] [ROUNDS]    # default 200000 requests, 3 rounds
# REDPLATE_BIN picks the binary (default: a release build, built here).
# Where Debian's haproxy and nutcracker (twemproxy) are installed, the same
# runs go through them too (`apt-get install haproxy nutcracker`): haproxy
# forwards bytes (TCP mode) to the same Redis; twemproxy, which has no ACL
# users, fronts a plain redis-server of its own, compared with that one.
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
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
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

# One redis-benchmark run: prints "rps p50_ms". AUTH="" runs without a user.
run() {
  local port=$1 pipeline=$2 cmd=$3
  local args=(SET tenant:bench:key:__rand_int__ xxxxxxxxxxxxxxxx)
  [ "$cmd" = GET ] && args=(GET tenant:bench:key:__rand_int__)
  # A key a cache rule covers: the gateway adds its TTL (a `decide` per write).
  [ "$cmd" = SET-TTL ] && args=(SET tenant:bench:session:__rand_int__ xxxxxxxxxxxxxxxx)
  local auth=(--user tenant-bench -a "$pw")
  [ -n "${AUTH-x}" ] || auth=()
  redis-benchmark -p "$port" "${auth[@]}" -c 50 -n "$requests" -r 100000 -P "$pipeline" --csv \
    "${args[@]}" 2>/dev/null | tail -1 | tr -d '"' | awk -F, '{print $2, $5}'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Runs `cmds` ROUNDS times straight to port $1 and through port $2, taking
# turns, and prints the medians side by side, the proxy's named $3.
compare() {
  local direct=$1 proxy=$2 name=$3
  shift 3
  for pipeline in 16 1; do
    for cmd in "$@"; do
      : > "$work/d"; : > "$work/g"
      for _ in $(seq "$rounds"); do
        run "$direct" $pipeline "$cmd" >> "$work/d"
        run "$proxy" $pipeline "$cmd" >> "$work/g"
      done
      d_rps=$(awk '{print $1}' "$work/d" | median); g_rps=$(awk '{print $1}' "$work/g" | median)
      d_p50=$(awk '{print $2}' "$work/d" | median); g_p50=$(awk '{print $2}' "$work/g" | median)
      printf '%-7s -P %-2s direct %10.0f rps p50 %.3f ms | %s %10.0f rps p50 %.3f ms | %.2fx throughput, +%.0f us p50\n' \
        "$cmd" "$pipeline" "$d_rps" "$d_p50" "$name" "$g_rps" "$g_p50" "$(echo "$g_rps / $d_rps" | bc -l)" \
        "$(echo "($g_p50 - $d_p50) * 1000" | bc -l)"
    done
  done
}

echo "redis-benchmark -c 50 -n $requests, $rounds rounds, $(nproc) cores; rps and p50 (ms) per run"
compare $direct $gateway gateway SET GET SET-TTL
pid=$(pgrep -f "redplate gateway gwbench" | head -1 || true)
[ -n "$pid" ] && echo "gateway peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")"

if command -v haproxy >/dev/null; then
  cat > "$work/haproxy.cfg" <<CFG
global
  maxconn 4096
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen redis
  bind 127.0.0.1:26960
  server master 127.0.0.1:$direct
CFG
  haproxy -f "$work/haproxy.cfg" -D -p "$work/haproxy.pid"
  sleep 0.5
  echo "haproxy $(haproxy -v | head -1 | awk '{print $3}') (TCP mode, one thread) in front of the same Redis:"
  compare $direct 26960 haproxy SET GET
else
  echo "haproxy is not installed: no side-by-side with it"
fi
if command -v nutcracker >/dev/null; then
  redis-server --port 26990 --save "" --appendonly no --daemonize yes --dir "$work" --logfile "$work/plain.log" \
    --pidfile "$work/plain.pid"
  cat > "$work/nutcracker.yml" <<CFG
bench:
  listen: 127.0.0.1:26961
  redis: true
  server_connections: 1
  servers:
    - 127.0.0.1:26990:1
CFG
  nutcracker -c "$work/nutcracker.yml" -d -p "$work/nutcracker.pid" -o "$work/nutcracker.log"
  sleep 0.5
  echo "twemproxy (nutcracker $(nutcracker -V 2>&1 | head -1 | awk '{print $NF}')) in front of a plain redis-server (no ACL users):"
  AUTH="" compare 26990 26961 twemproxy SET GET
else
  echo "nutcracker (twemproxy) is not installed: no side-by-side with it"
fi
