#!/usr/bin/env bash
# Time until ready of local deployments (hyperfine, whole process: render,
# start every node, wait for PING / replicas in sync / sentinels agreeing /
# cluster formed with cluster_state:ok):
#   - standalone (development preset)                     target ≤ 0.5 s
#   - sentinel: 1 master + 2 replicas + 3 sentinels
#   - cluster: 3 masters × 1 replica                      target ≤ 5 s
#   - the production sentinel example as it is (TLS with a local CA, ACL)
# Each timed run starts from nothing (`--prepare` destroys with --purge).
# Then the time of `redplate scale` adding replicas until ready (in sync,
# listed by every sentinel / cluster_state:ok with every replica attached):
#   - sentinel: 2 -> 3 replicas;  cluster: 3 × 1 -> 3 × 2
# (`--prepare` scales back down, untimed).
#   scripts/bench-deploy.sh [RUNS]     # default 10 runs each
# Needs redis-server, redis-sentinel, redis-cli, openssl, hyperfine and a
# release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
runs=${1:-10}
cargo build --release -q -p redplate
bin=$PWD/target/release/redplate
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home
names=(bench-standalone bench-sentinel bench-cluster orders)
cleanup() {
  for n in "${names[@]}"; do "$bin" destroy "$n" --purge --quiet 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/standalone.yaml" <<'EOF'
extends: development
deployment: { name: bench-standalone }
network: { local_base_port: 23000 }
EOF
cat > "$work/sentinel.yaml" <<'EOF'
extends: development
deployment: { name: bench-sentinel, mode: sentinel }
replication: { replicas: 2 }
sentinel: { sentinels: 3, quorum: 2 }
network: { local_base_port: 23100 }
EOF
cat > "$work/cluster.yaml" <<'EOF'
extends: development
deployment: { name: bench-cluster, mode: cluster }
cluster: { shards: 3, replicas_per_shard: 1 }
performance: { databases: 1 }
network: { local_base_port: 23200 }
EOF

bench() { # name, deploy arguments…
  local name=$1; shift
  echo "== $name: time until ready"
  hyperfine --warmup 1 --runs "$runs" \
    --prepare "$bin destroy $name --purge --quiet 2>/dev/null || true" \
    --export-json "$work/$name.json" \
    "$bin deploy $* --quiet"
  "$bin" destroy "$name" --purge --quiet
}

bench_scale() { # name, template, replicas before, replicas after
  local name=$1 template=$2 from=$3 to=$4
  echo "== $name: scale from $from to $to replicas per master, time until ready"
  "$bin" deploy "$template" --quiet >/dev/null
  hyperfine --runs "$runs" \
    --prepare "$bin scale $name --replicas $from --quiet" \
    --export-json "$work/$name-scale.json" \
    "$bin scale $name --replicas $to --quiet"
  "$bin" destroy "$name" --purge --quiet
}

bench bench-standalone "$work/standalone.yaml"
bench bench-sentinel "$work/sentinel.yaml"
bench bench-cluster "$work/cluster.yaml"
bench orders "examples/sentinel-production.yaml --set network.local_base_port=23300"
bench_scale bench-sentinel "$work/sentinel.yaml" 2 3
bench_scale bench-cluster "$work/cluster.yaml" 1 2

echo "== summary (mean ± σ, seconds)"
for n in bench-standalone bench-sentinel bench-cluster orders bench-sentinel-scale bench-cluster-scale; do
  python3 - "$work/$n.json" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"{sys.argv[2]:18} {r['mean']:.3f} ± {r['stddev']:.3f}  (min {r['min']:.3f}, max {r['max']:.3f}, {len(r['times'])} runs)")
PY
done
