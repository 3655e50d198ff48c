#!/usr/bin/env bash
# Installs what redplate's build and tests need on a fresh Debian 12 machine:
# the wasm32-wasip2 Rust target, Redis (server, sentinel, cli), shellcheck and
# hyperfine from Debian's packages. Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need_apt=()
for pair in redis-server:redis-server redis-sentinel:redis-sentinel redis-cli:redis-tools shellcheck:shellcheck hyperfine:hyperfine zstd:zstd openssl:openssl python3:python3; do
  bin=${pair%%:*}; pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian's packages"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || {
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
}
# Debian starts a system redis-server on 6379 when it installs the package;
# the tests use ports chosen at run time, so it is left alone.

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi

# The validators we did not write, in virtualenvs. docker-compose 1.29 needs
# PyYAML 5.4.1 (built without build isolation, so cython<3 and wheel come
# first), which also fits checkov 2.2; kubernetes-validate needs a newer
# jsonschema than that checkov accepts, so it lives in a second virtualenv
# and is linked into the first: every tool is found in "$venv/bin".
venv=${REDPLATE_VENV:-$PWD/.venv}
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/docker-compose" ]; then
  echo "setup: creating the validators' virtualenv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip wheel "cython<3"
  "$venv/bin/pip" install -q --no-build-isolation pyyaml==5.4.1
  "$venv/bin/pip" install -q docker-compose==1.29.2 checkov==2.2.231
fi
if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1 || [ ! -L "$venv/bin/kubernetes-validate" ]; then
  echo "setup: creating the kubernetes-validate virtualenv in $venv-kv"
  python3 -m venv "$venv-kv"
  "$venv-kv/bin/pip" install -q --upgrade pip
  "$venv-kv/bin/pip" install -q kubernetes-validate==1.37.0
  ln -sf "$venv-kv/bin/kubernetes-validate" "$venv/bin/kubernetes-validate"
fi
