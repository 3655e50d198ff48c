#!/usr/bin/env bash
# Builds the local Redis image the Compose backend's tests run (no image
# registry is reachable on the test machines): a small root filesystem with
# this machine's Debian redis-server / redis-sentinel / redis-cli, the shared
# libraries they load (ldd), glibc's getent (the cluster-init script resolves
# service names with it) and a static busybox for `sh` and the tools the
# rendered scripts use; `/data` belongs to uid 999, the user the rendered
# services run as (a fresh named volume takes its owner from the image).
# Imported with `podman import`. Idempotent: does nothing when the image exists.
#   scripts/compose-image.sh [IMAGE]   (default: localhost/redplate-redis:test)
set -euo pipefail
image=${1:-localhost/redplate-redis:test}
if podman image exists "$image"; then
  exit 0
fi
for f in /usr/bin/redis-check-rdb /usr/bin/redis-cli /usr/bin/getent /bin/busybox; do
  [ -x "$f" ] || { echo "compose-image: $f is missing (apt-get install redis-server redis-tools libc-bin busybox-static)" >&2; exit 1; }
done
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,usr/bin,etc,data,tmp,usr/local/etc/redis,etc/redis,run/secrets}
cp /usr/bin/redis-check-rdb /usr/bin/redis-cli /usr/bin/getent "$root/usr/bin/"
# Redis picks its personality from the name it is run as.
ln -s redis-check-rdb "$root/usr/bin/redis-server"
ln -s redis-check-rdb "$root/usr/bin/redis-sentinel"
# Every shared library (and the loader) the binaries need, at the same paths.
libs=$(ldd /usr/bin/redis-check-rdb /usr/bin/redis-cli /usr/bin/getent | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u)
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ -e "$root/bin/$applet" ] || [ -e "$root/usr/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nredis:x:999:999:redis:/data:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nredis:x:999:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
chown 999:999 "$root/data"
tar --numeric-owner -C "$root" -cf - . |
  podman import --change 'ENV PATH=/usr/bin:/bin' --change 'WORKDIR /data' --change 'CMD ["redis-server"]' - "$image" >/dev/null
echo "compose-image: built $image"
