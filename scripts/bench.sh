#!/usr/bin/env bash
# Whole-process timings of the CLI (hyperfine) and peak memory, on this
# machine. Prints the figures the README's benchmark table quotes.
#   scripts/bench.sh            # all
# Needs a release build: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p redplate
bin=$PWD/target/release/redplate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export REDPLATE_CACHE_DIR=$work/cache REDPLATE_HOME=$work/home

peak_rss() { # peak RSS in MiB of one run of "$@"
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f}")
PY
}

render_prod=("$bin" render presets/production.yaml --target all --out "$work/out" --quiet)
"${render_prod[@]}"   # warms the plugin cache and creates the generated passwords

echo "== cold render of the production sentinel deployment, all targets, warm plugin cache"
hyperfine -N --warmup 3 --runs 30 --export-json "$work/warm.json" "${render_prod[*]}"
echo "peak RSS: $(peak_rss "${render_prod[@]}") MiB"

echo "== the same with an empty plugin cache (first run)"
hyperfine -N --runs 5 --prepare "rm -rf $work/cache" "${render_prod[*]}"
rm -rf "$work/cache"; echo "peak RSS (empty cache): $(peak_rss "${render_prod[@]}") MiB"

echo "== render --batch of 1,000 distinct templates"
mkdir -p "$work/batch"
modes=(standalone replication sentinel cluster)
envs=(development staging production)
shapes=(
  ""
  "replication:\n  replicas: 2\n"
  "replication:\n  replicas: 2\nsentinel:\n  sentinels: 3\n"
  "cluster:\n  shards: 3\n  replicas_per_shard: 1\n"
)
for i in $(seq 0 999); do
  m=${modes[$((i % 4))]}; e=${envs[$((i / 4 % 3))]}
  printf "extends: %s\ndeployment:\n  name: app-%04d\n  mode: %s\nresources:\n  memory: %dmb\n${shapes[$((i % 4))]}" \
    "$e" "$i" "$m" $((256 + i)) > "$work/batch/app-$i.yaml"
done
"$bin" render "$work/batch" --batch --target local --out "$work/batch-check" --quiet  # every template is valid
# Each run writes into a folder that does not exist yet; the previous
# output is moved aside, not deleted (deleting ~30,000 files just before
# creating as many makes ext4 slow down the creation: not what users see).
mkdir -p "$work/old"
for target in all local; do
  hyperfine -N --runs 3 --prepare "sh -c 'test ! -e $work/batch-out || mv $work/batch-out $work/old/\$\$'" \
    "$bin render $work/batch --batch --target $target --out $work/batch-out --quiet"
done
rm -rf "$work/old"

echo "== validate (host rules only) of the production preset, whole process"
hyperfine -N --warmup 3 --runs 30 "$bin validate presets/production.yaml --no-plugins --quiet"
