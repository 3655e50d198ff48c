#!/usr/bin/env bash
# Whole-process time of the commands that look at a running deployment
# (hyperfine), on 9-node deployments: a Redis Cluster of 3 shards × (1 master
# + 2 replicas)
#   - `examples/cluster-production.yaml` (TLS with a local CA, ACL), and
#   - the same topology on the development preset (plain TCP, no ACL):
#   redplate stats   <name>          target ≤ 100 ms
#   redplate health  <name>          target ≤ 200 ms
#   redplate status  <name>          (the existing command, for comparison)
#   redplate metrics <name>          (no target; includes health)
#   scripts/bench-observe.sh [RUNS]     # default 30 runs each
# Needs redis-server, redis-cli, hyperfine and a release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
runs=${1:-30}
cargo build --release -q -p redplate
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/redplate
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home
names=(catalog bench-plain)
cleanup() {
  for n in "${names[@]}"; do "$bin" destroy "$n" --purge --quiet 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/plain.yaml" <<'EOF'
extends: development
deployment: { name: bench-plain, mode: cluster }
cluster: { shards: 3, replicas_per_shard: 2 }
performance: { databases: 1 }
EOF

"$bin" deploy examples/cluster-production.yaml --set cluster.replicas_per_shard=2 \
  --set network.local_base_port=26000 --quiet >/dev/null
"$bin" deploy "$work/plain.yaml" --set network.local_base_port=26100 --quiet >/dev/null

for name in catalog bench-plain; do
  nodes=$("$bin" status "$name" --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["nodes"]))')
  echo "== $name ($nodes nodes): health is $("$bin" health "$name" | head -1)"
  hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/$name.json" \
    "$bin stats $name" "$bin health $name" "$bin status $name" "$bin metrics $name"
done

echo "== summary (mean ± σ, milliseconds)"
for name in catalog bench-plain; do
  python3 - "$work/$name.json" "$name" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    cmd = " ".join(r["command"].split()[1:])
    ms = lambda s: s * 1000
    print(f"{cmd:28} {ms(r['mean']):6.1f} ± {ms(r['stddev']):5.1f}  (median {ms(r['median']):.1f}, min {ms(r['min']):.1f}, max {ms(r['max']):.1f}, {len(r['times'])} runs)")
PY
done
