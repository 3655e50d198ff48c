#!/usr/bin/env bash
# The test command: every check CI runs, on a fresh machine of this kind.
#   formatting, clippy (native and wasm32-wasip2 plugins, -D warnings), every test.
# Tests run in release mode: the plugin sandbox tests time their limits, and
# the release build is shared with `cargo bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# Strict: a test that needs a missing tool (Redis, a validator) fails instead
# of skipping, here as in CI. setup.sh installs them all.
export CI=true
scripts/setup.sh

wasm_packages=()
for p in redis-conf compose kubernetes backup cache-aside write-through write-behind refresh-ahead; do wasm_packages+=(-p "plugin-$p"); done
for d in plugins/fixtures/*/; do wasm_packages+=(-p "fixture-$(basename "$d")"); done

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo clippy (wasm32-wasip2 plugins)"
cargo clippy --target wasm32-wasip2 --locked "${wasm_packages[@]}" -- -D warnings
echo "== cargo test"
cargo test --workspace --release --locked --no-fail-fast
