#!/bin/bash
# Quick start, part one: builds hoist, builds the example image (examples/hello) and runs it.
# Needs root (RUN steps use namespaces and overlayfs) and Debian's busybox-static and crun.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in busybox-static crun; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release -q
ctx=$(mktemp -d); trap 'rm -rf "$ctx"' EXIT
cp -a examples/hello/. "$ctx/"; cp /bin/busybox "$ctx/busybox"
./target/release/hoist build -t example/hello:latest "$ctx"
./target/release/hoist run example/hello:latest
