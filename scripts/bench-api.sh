#!/usr/bin/env bash
# The REST API under concurrent load (wrk, Debian's package), against a
# running deployment (`examples/multi-tenant.yaml`: Sentinel, TLS, ACL):
#   GET  /api/v1/deployments/saas-cache/health
#   GET  /api/v1/deployments/saas-cache/stats
#   POST /api/v1/deployments/saas-cache/tenants/acme/execute   (GET of one key as the tenant)
#   GET  /healthz while a long job runs (removal of a tenant with 300,000 keys)
# and the server's peak resident memory (VmHWM).
#   scripts/bench-api.sh [SECONDS] [CONNECTIONS]    # default 10 s, 16 connections
# REDPLATE_BIN picks the binary (default: a release build, built here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
secs=${1:-10}
conns=${2:-16}
if [ -z "${REDPLATE_BIN:-}" ]; then
  cargo build --release -q -p redplate
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/redplate
else
  bin=$REDPLATE_BIN
fi
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home
port=18093
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  "$bin" destroy saas-cache --purge --quiet 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" deploy examples/multi-tenant.yaml --set network.local_base_port=26600 --quiet >/dev/null
token=$("$bin" token create --admin 2>/dev/null)
"$bin" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" tenant exec saas-cache acme -- SET tenant:acme:k v >/dev/null

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"command":["GET","tenant:acme:k"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat > "$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA

run() { # label, wrk args…
  local label=$1; shift
  local out
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$@")
  printf '%-34s %8s req/s  p50 %8s  p99 %8s  errors %s\n' "$label" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
    "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
    "$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || echo 0)"
}
base=http://127.0.0.1:$port/api/v1/deployments/saas-cache
echo "redplate serve, $conns connections, ${secs} s each ($(nproc) cores)"
run "GET health" -s "$work/get.lua" "$base/health"
run "GET stats" -s "$work/get.lua" "$base/stats"
run "POST tenants/acme/execute" -s "$work/post.lua" "$base/tenants/acme/execute"

# A long job: remove a tenant with 300,000 keys (paced), /healthz meanwhile.
master=$("$bin" status saas-cache --format json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(next(n["port"] for n in s["nodes"] if n.get("role") == "master"))')
prefix=$("$bin" tenant show saas-cache globex --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"]["prefix"])')
state=$REDPLATE_HOME/deployments/saas-cache
python3 - "$prefix" > "$work/keys.resp" <<'PY'
import sys
p = sys.argv[1]
out = sys.stdout
for i in range(300000):
    k = f"{p}{i}"
    out.write(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$1\r\nv\r\n")
PY
# redis-cli as redplate's admin user, with the deployment's TLS files.
mapfile -t admin < <(python3 - "$state/deployment.json" "$state" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1]))
t = r.get("tls") or {}
print(r["admin_user"])
print(open(os.path.join(sys.argv[2], r["admin_password_file"])).read().strip())
for k in ("ca_file", "cert_file", "key_file"):
    print(t.get(k, ""))
PY
)
REDISCLI_AUTH=${admin[1]} redis-cli -p "$master" --tls --cacert "${admin[2]}" --cert "${admin[3]}" --key "${admin[4]}" \
  --user "${admin[0]}" --no-auth-warning --pipe < "$work/keys.resp" | tail -1
job=$(curl -s -X DELETE -H "Authorization: Bearer $token" "$base/tenants/globex" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
run "GET /healthz during a tenant removal" "http://127.0.0.1:$port/healthz"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/operations/$job" | python3 -c '
import json, sys
o = json.load(sys.stdin)
print("the removal job:", o["state"], o.get("progress", ""))'
echo "server peak resident memory: $(awk '/VmHWM/ {print $2, $3}' "/proc/$server/status")"
