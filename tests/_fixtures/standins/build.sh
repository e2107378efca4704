#!/usr/bin/env bash
# TEST INFRASTRUCTURE, not part of the product. The build machines cannot pull base images, so this
# builds local stand-ins under the upstream names that deploy/Dockerfile and compose.yaml use:
#   node:20-bookworm-slim          Debian bookworm + this machine's Node.js 20, npm and headers
#   redis:7, postgres:15,          Debian bookworm + Debian's redis-server, postgresql-15,
#   prom/prometheus:v2.53.0,       prometheus and prometheus-alertmanager, with the upstream
#   prom/alertmanager:v0.27.0      images' entry points, users and data directories
# Grafana has no Debian package and gets no stand-in (its provisioning is checked offline).
#
# Because of this network, and only in the stand-ins (never in deploy/Dockerfile), the images
# carry the build machine's CA bundle (HTTPS to the npm registry passes an extra CA; also given as
# NODE_EXTRA_CA_CERTS) and Node's headers with npm_config_nodedir (node-gyp cannot download them).
#
# Usage: tests/_fixtures/standins/build.sh [--rebuild]
# An image that exists is kept (so one CI run builds each once); --rebuild builds all again.
# Podman runs as root with runc and no default ulimits: export CONTAINERS_CONF as below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"
cache=${TELEMETRYHUB_STANDIN_CACHE:-/var/tmp/telemetryhub-standins}
rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true
mkdir -p "$cache"

have() { ! $rebuild && podman image exists "$1"; }
log() { printf '[standins] %s\n' "$*" >&2; }
# Tag an image under its fully qualified upstream name and the short name podman resolves to
# localhost/ when no search registry is configured.
tag() {
  local img=$1 name=$2
  podman tag "$img" "docker.io/$name" "localhost/${name#library/}"
}

base=localhost/telemetryhub-standin-bookworm:latest
if ! have "$base"; then
  log "debootstrap bookworm (minbase)"
  if [ ! -d "$cache/rootfs.done" ]; then
    rm -rf "$cache/rootfs.tmp"
    debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" http://deb.debian.org/debian >&2
    mv "$cache/rootfs.tmp" "$cache/rootfs.done"
  fi
  root="$cache/rootfs.done"
  # The build machine's CA bundle (see above) and no service starts from package scripts.
  mkdir -p "$root/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["bash"]' - "$base" >&2
  tag "$base" library/debian:bookworm-slim
fi

if ! have docker.io/library/node:20-bookworm-slim; then
  log "node:20-bookworm-slim from this machine's Node.js $(node --version)"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  mkdir -p "$ctx/usr/local/bin" "$ctx/usr/local/lib/node_modules" "$ctx/usr/local/include"
  cp "$(command -v node)" "$ctx/usr/local/bin/node"
  node_root=$(npm root -g)
  cp -a "$node_root/npm" "$ctx/usr/local/lib/node_modules/npm"
  cp -a "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node" "$ctx/usr/local/include/node"
  cp "$here/node.Containerfile" "$ctx/Containerfile"
  podman build --pull=never --network host --build-arg "BASE=$base" -t localhost/telemetryhub-standin-node:20 "$ctx" >&2
  tag localhost/telemetryhub-standin-node:20 library/node:20-bookworm-slim
  rm -rf "$ctx"
  trap - EXIT
fi

services=localhost/telemetryhub-standin-services:latest
if ! have "$services"; then
  log "Debian's redis, postgresql-15, prometheus and alertmanager (one layer for all four)"
  podman build --pull=never --network host --build-arg "BASE=$base" --target services -t "$services" \
    -f "$here/services.Containerfile" "$here" >&2
fi
for target in redis:library/redis:7 postgres:library/postgres:15 \
  prometheus:prom/prometheus:v2.53.0 alertmanager:prom/alertmanager:v0.27.0; do
  stage=${target%%:*} name=${target#*:}
  if ! have "docker.io/$name"; then
    log "$name"
    # The same first stage as above, so its layer comes from podman's cache.
    podman build --pull=never --network host --build-arg "BASE=$base" --target "$stage" \
      -t "localhost/telemetryhub-standin-$stage:latest" -f "$here/services.Containerfile" "$here" >&2
    tag "localhost/telemetryhub-standin-$stage:latest" "$name"
  fi
done
log "ready: $(podman images --format '{{.Repository}}:{{.Tag}}' | grep -c telemetryhub-standin) stand-in images"
