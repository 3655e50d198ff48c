#!/usr/bin/env bash
# Installs what redplate's build and tests need on a fresh Debian 12 machine:
# the wasm32-wasip2 Rust target, Redis (server, sentinel, cli), shellcheck and
# hyperfine from Debian's packages, the validators' virtualenvs, and podman,
# podman-compose and a local Redis image for the Compose backend's tests.
# Idempotent: installs only what is missing. Runs as root without sudo.
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

# The validators we did not write, one virtualenv each, because their
# dependencies cannot share one: docker-compose 1.29 needs PyYAML 5.4.1 (built
# without build isolation, so cython<3 and wheel come first), which current
# checkov (3.x) refuses; kubernetes-validate needs a newer jsonschema than
# docker-compose accepts. "$venv" holds docker-compose, and every other tool
# is linked into "$venv/bin", so every tool is found there.
venv=${REDPLATE_VENV:-$PWD/.venv}
checkov_version=3.3.30
kv_version=1.37.0
if [ ! -x "$venv/bin/docker-compose" ]; then
  echo "setup: creating the docker-compose virtualenv in $venv"
  # --clear: a setup interrupted here left a virtualenv without pip.
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q --upgrade pip wheel "cython<3"
  "$venv/bin/pip" install -q --no-build-isolation pyyaml==5.4.1
  "$venv/bin/pip" install -q docker-compose==1.29.2
fi
# An older setup installed checkov 2.2 into "$venv" itself: remove it, so the
# link below is the only checkov there.
if [ -e "$venv/bin/checkov" ] && [ ! -L "$venv/bin/checkov" ]; then
  echo "setup: removing the old checkov from $venv"
  "$venv/bin/pip" uninstall -q -y checkov
  rm -f "$venv/bin/checkov" "$venv/bin/checkov.cmd"
fi
# `tool VENV NAME PACKAGE VERSION`: installs PACKAGE==VERSION in its own
# virtualenv VENV unless that version is there, and links NAME into "$venv/bin".
tool() {
  local dir=$1 name=$2 package=$3 version=$4
  local installed
  installed=$("$dir/bin/pip" show "$package" 2>/dev/null | sed -n 's/^Version: //p') || true
  if [ "$installed" != "$version" ]; then
    echo "setup: installing $package $version in $dir"
    python3 -m venv --clear "$dir"
    "$dir/bin/pip" install -q --upgrade pip
    "$dir/bin/pip" install -q "$package==$version"
  fi
  if [ "$(readlink "$venv/bin/$name" 2>/dev/null)" != "$dir/bin/$name" ]; then
    ln -sfn "$dir/bin/$name" "$venv/bin/$name"
  fi
}
tool "$venv-kv" kubernetes-validate kubernetes-validate "$kv_version"
tool "$venv-checkov" checkov checkov "$checkov_version"
# The REST API is fuzzed from its OpenAPI document (tests/api.rs).
tool "$venv-st" schemathesis schemathesis 4.32.5
"$venv/bin/kubernetes-validate" --version >/dev/null
"$venv/bin/checkov" --version >/dev/null
# `redplate metrics` output is read back with the Prometheus text parser (tests/observe.rs).
"$venv/bin/python" -c 'import prometheus_client' 2>/dev/null || "$venv/bin/pip" install -q prometheus_client==0.26.0
# redis-py is one of the real clients the tenant gateway is tested with (tests/gateway.rs).
"$venv/bin/python" -c 'import redis' 2>/dev/null || "$venv/bin/pip" install -q redis==5.2.1

# The Compose backend's tests (tests/compose_backend.rs) run real containers
# with podman: Debian's podman with runc (crun, the default, fails on this
# machine's hybrid cgroups) and the cgroupfs manager (no systemd), written
# into containers.conf once; podman-compose from PyPI; and a local Redis
# image (no registry is reachable), built by scripts/compose-image.sh.
need_apt=()
for pair in podman:podman runc:runc /bin/busybox:busybox-static getent:libc-bin; do
  bin=${pair%%:*}; pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian's packages"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
conf=/etc/containers/containers.conf
if ! grep -qs '^runtime *= *"runc"' "$conf"; then
  echo "setup: podman uses runc and cgroupfs ($conf)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO mkdir -p /etc/containers
  if grep -qs '^\[engine\]' "$conf"; then
    $SUDO sed -i '/^\[engine\]/a runtime = "runc"\ncgroup_manager = "cgroupfs"' "$conf"
  else
    printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' | $SUDO tee -a "$conf" >/dev/null
  fi
fi
tool "$venv-pc" podman-compose podman-compose 1.6.0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO scripts/compose-image.sh localhost/redplate-redis:test
