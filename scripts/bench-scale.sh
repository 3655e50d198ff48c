#!/usr/bin/env bash
# `redplate scale --shards` 3 -> 4 on a local cluster (development preset,
# 3 masters x 1 replica) holding 1,000,000 keys: the time the scale takes
# (slots moved until even, new nodes joined, cluster_state:ok), and the
# write latency a client sees meanwhile — a small Python client sending
# `SET` one at a time and following `MOVED`/`ASK`, measured alone first
# (baseline), then during the scale. Checks afterwards that every key is
# still there and no slot is open.
#   scripts/bench-scale.sh [KEYS]          # default 1000000
# Needs redis-server, redis-cli, python3 and a release build (built here;
# REDPLATE_BIN=path uses that binary instead).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
keys=${1:-1000000}
if [[ -z "${REDPLATE_BIN:-}" ]]; then
  cargo build --release -q -p redplate
  bin=$PWD/target/release/redplate
else
  bin=$REDPLATE_BIN
fi
work=$(mktemp -d)
export REDPLATE_CACHE_DIR=${REDPLATE_CACHE_DIR:-$work/cache} REDPLATE_HOME=$work/home
name=bench-shards
base=29000
cleanup() {
  "$bin" destroy "$name" --purge --quiet 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/cluster.yaml" <<YAML
extends: development
deployment: { name: $name, mode: cluster }
cluster: { shards: 3, replicas_per_shard: 1 }
performance: { databases: 1 }
resources: { memory: 1gb }
network: { local_base_port: $base }
YAML

# The client: SET lat:<n> one at a time until the file $2 exists (or for
# $2 seconds), following MOVED/ASK; prints ops, errors, p50/p99/p99.9/max.
cat > "$work/probe.py" <<'PY'
import os, socket, sys, time
ports, stop = [int(p) for p in sys.argv[1].split(",")], sys.argv[2]
def crc16(b):
    c = 0
    for x in b:
        c ^= x << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
            c &= 0xFFFF
    return c
conns, owner = {}, {}
def conn(p):
    if p not in conns:
        s = socket.create_connection(("127.0.0.1", p)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns[p] = (s, s.makefile("rb"))
    return conns[p]
def cmd(p, *args):
    s, f = conn(p)
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    return f.readline().rstrip(b"\r\n")
lat, errors, n = [], 0, 0
deadline = None if not stop.replace(".", "").isdigit() else time.time() + float(stop)
while (deadline is None and not os.path.exists(stop)) or (deadline is not None and time.time() < deadline):
    key = b"lat:%d" % n; slot = crc16(key) % 16384; p = owner.get(slot, ports[0]); ask = False
    t = time.perf_counter()
    for _ in range(20):
        if ask: cmd(p, b"ASKING")
        r = cmd(p, b"SET", key, b"x")
        if r.startswith(b"-MOVED"): p = int(r.split(b":")[-1]); owner[slot] = p; ask = False; continue
        if r.startswith(b"-ASK"): p = int(r.split(b":")[-1]); ask = True; continue
        if r.startswith(b"-TRYAGAIN") or r.startswith(b"-CLUSTERDOWN"): time.sleep(0.01); continue
        break
    lat.append(time.perf_counter() - t); n += 1
    if r != b"+OK": errors += 1
lat.sort()
q = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))] * 1000
print(f"{n} writes, {errors} errors, p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms, p99.9 {q(0.999):.3f} ms, max {lat[-1]*1000:.1f} ms")
PY

# Keys k:<i> written straight to the master serving their slot with --pipe.
cat > "$work/load.py" <<'PY'
import sys
keys, out = int(sys.argv[1]), sys.argv[2]
table = []
for i in range(256):
    c = i << 8
    for _ in range(8):
        c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
    table.append(c & 0xFFFF)
def crc16(b):
    c = 0
    for x in b:
        c = ((c << 8) & 0xFFFF) ^ table[((c >> 8) ^ x) & 0xFF]
    return c
files = [open(f"{out}.{m}", "wb") for m in range(3)]
for i in range(keys):
    k = b"k:%d" % i
    s = crc16(k) % 16384
    m = 0 if s <= 5460 else (1 if s <= 10922 else 2)
    v = b"v%d" % i
    files[m].write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY

echo "== deploying 3 x 1 and loading $keys keys"
"$bin" deploy "$work/cluster.yaml" --quiet >/dev/null
python3 "$work/load.py" "$keys" "$work/keys"
for m in 0 1 2; do redis-cli -p $((base + 10 * m)) --pipe < "$work/keys.$m" | tail -1; done
total() { local t=0; for p in "$@"; do t=$((t + $(redis-cli -p "$p" DBSIZE))); done; echo $t; }
before=$(total $base $((base + 10)) $((base + 20)))
echo "keys in the cluster: $before"

echo "== write latency alone (10 s)"
python3 "$work/probe.py" "$base,$((base + 10)),$((base + 20))" 10

echo "== scale --shards 3 -> 4, with the client writing"
rm -f "$work/stop"
python3 "$work/probe.py" "$base,$((base + 10)),$((base + 20))" "$work/stop" > "$work/during.txt" &
probe=$!
sleep 1
start=$(date +%s%N)
"$bin" scale "$name" --shards 4
end=$(date +%s%N)
touch "$work/stop"
wait "$probe"
echo "scale took $(( (end - start) / 1000000 )) ms"
echo "write latency during the scale: $(cat "$work/during.txt")"

after=$(total $base $((base + 10)) $((base + 20)) $((base + 30)))
lat=0
for p in $base $((base + 10)) $((base + 20)) $((base + 30)); do
  lat=$((lat + $(redis-cli -p "$p" --scan --pattern 'lat:*' | wc -l)))
done
echo "keys after: $after ($before + $lat written by the client)"
[[ $after -eq $((before + lat)) ]] || { echo "KEYS LOST"; exit 1; }
if redis-cli -p $base CLUSTER NODES | grep -q -e '->-' -e '-<-'; then echo "OPEN SLOTS LEFT"; exit 1; fi
echo "no slot open; cluster_state: $(redis-cli -p $base CLUSTER INFO | grep cluster_state | tr -d '\r')"
