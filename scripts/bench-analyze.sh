#!/usr/bin/env bash
# `redplate analyze --full` of KEYS keys (default 1,000,000) on one node,
# against `redis-cli --memkeys` on the same data in the same run:
#   - a standalone deployment (development preset, no auth), loaded with
#     `redis-cli --pipe`: 40% `user:<n>:profile` hashes (2 fields), 40%
#     `session:<hex>` strings with a 30 min TTL, 20% `cache:item:<n>` strings;
#   - timed with hyperfine: `analyze --full` at the default pace (our
#     commands take at most half of the server's time, `--duty 0.5`), the
#     same unpaced (`--duty 1`, a server nobody else uses), unpaced with
#     `SCAN`s of up to 2 ms (`--budget-us 2000`), and
#     `redis-cli --memkeys` (SCAN + TYPE + MEMORY USAGE, pipelined; no
#     patterns, TTLs or encodings);
#   - the analysis must find exactly KEYS keys in its three patterns;
#   - target: `analyze --full` ≤ 5 s for 1,000,000 keys.
#   scripts/bench-analyze.sh [KEYS] [RUNS]
# Needs redis-server, redis-cli, hyperfine and a release build (built here;
# CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
keys=${1:-1000000}
runs=${2:-3}
cargo build --release -q -p redplate
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/redplate
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home
cleanup() {
  "$bin" destroy bench-analyze --purge --quiet 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/analyze.yaml" <<'EOF'
extends: development
deployment: { name: bench-analyze }
network: { local_base_port: 26970 }
resources: { memory: 2gb }
EOF
"$bin" deploy "$work/analyze.yaml" --quiet --format json > "$work/record.json"
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["port"])' "$work/record.json")
cli=(redis-cli -p "$port")

echo "loading $keys keys"
awk -v n="$keys" 'BEGIN {
  for (i = 0; i < n; i++) {
    if (i % 5 < 2) {
      k = "user:" i ":profile"
      printf "*6\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n$4\r\nname\r\n$%d\r\nn%d\r\n$3\r\nage\r\n$2\r\n42\r\n", length(k), k, length("n" i) , i
    } else if (i % 5 < 4) {
      k = sprintf("session:%x%07d", (i * 2654435761) % 2147483647, i)
      printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n$2\r\nEX\r\n$4\r\n1800\r\n", length(k), k
    } else {
      k = "cache:item:" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n", length(k), k
    }
  }
}' | "${cli[@]}" --pipe | tail -1
echo "keys: $("${cli[@]}" DBSIZE), used memory: $("${cli[@]}" INFO memory | grep '^used_memory_human' | tr -d '\r')"

"$bin" analyze bench-analyze --full --format json > "$work/analysis.json"
python3 - "$work/analysis.json" "$keys" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
found = {p["pattern"]: p["keys"] for p in a["patterns"]}
print("patterns:", found)
assert sum(found.values()) == int(sys.argv[2]) and len(found) == 3, "analyze --full must see every key in 3 patterns"
PY

hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/times.json" \
  "$bin analyze bench-analyze --full --format json" \
  "$bin analyze bench-analyze --full --duty 1 --format json" \
  "$bin analyze bench-analyze --full --duty 1 --budget-us 2000 --format json" \
  "redis-cli -p $port --memkeys"

echo "== summary (mean ± σ, seconds, $keys keys)"
python3 - "$work/times.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    cmd = " ".join(w for w in r["command"].split() if "/" not in w)
    print(f"{cmd:58} {r['mean']:6.2f} ± {r['stddev']:4.2f}  (min {r['min']:.2f}, max {r['max']:.2f}, {len(r['times'])} runs)")
PY
