#!/bin/bash
# Prepares a fresh Debian machine (as root) for hoist's tests and benchmarks:
#   - the Debian packages the tests use (OCI runtimes, a distribution registry, peers),
#   - a plain-HTTP registry on 127.0.0.1:5000 (Debian's docker-registry),
#   - base images made here: localhost:5000/busybox:latest (from busybox-static) and,
#     with HOIST_LAB_DEBIAN=1, localhost:5000/debian:bookworm (debootstrap).
# Idempotent: a second run only checks.
set -euo pipefail
LAB=${HOIST_LAB:-/var/lib/hoist-lab}
REG=127.0.0.1:5000
mkdir -p "$LAB"

pkgs=(crun runc uidmap libc6-dev docker-registry skopeo buildah umoci busybox-static git openssl apache2-utils zstd xz-utils bzip2 jq bc curl ca-certificates iproute2 strace)
[ "${HOIST_LAB_DEBIAN:-0}" = 1 ] && pkgs+=(debootstrap)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "lab: installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! curl -sf "http://$REG/v2/" >/dev/null; then
  cat >"$LAB/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $LAB/registry}
  delete: {enabled: true}
http: {addr: "127.0.0.1:5000"}
YML
  setsid nohup docker-registry serve "$LAB/registry.yml" >"$LAB/registry.log" 2>&1 </dev/null &
  for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
  curl -sf "http://$REG/v2/" >/dev/null || { echo "lab: registry did not start, see $LAB/registry.log" >&2; exit 1; }
fi

have() { skopeo inspect --tls-verify=false "docker://$REG/$1" >/dev/null 2>&1; }

push_rootfs() { # push_rootfs DIR IMAGE CMD
  local c; c=$(buildah from scratch)
  buildah copy -q "$c" "$1" / >/dev/null
  buildah config --cmd "$3" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  buildah commit -q "$c" "localhost:5000/$2" >/dev/null
  buildah rm "$c" >/dev/null
  buildah push -q --tls-verify=false "localhost:5000/$2" >/dev/null
}

if ! have busybox:latest; then
  r=$LAB/busybox-rootfs; rm -rf "$r"; mkdir -p "$r"/{bin,etc,tmp,root,home/app,var/tmp}
  cp /bin/busybox "$r/bin/busybox"
  for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
  chmod 1777 "$r/tmp" "$r/var/tmp"; chown 1000:1000 "$r/home/app"
  printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\ndaemon:x:1:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n' >"$r/etc/group"
  push_rootfs "$r" busybox:latest '["sh"]'
fi

if [ "${HOIST_LAB_DEBIAN:-0}" = 1 ] && ! have debian:bookworm; then
  r=$LAB/debian-rootfs; rm -rf "$r"
  # The Debian mirror apt already uses (deb822 sources, then one-line lists): never a fixed host.
  mirror=$(sed -n 's/^URIs: *\(\S*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\(\S*\/debian\)\/* .*/\2/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
  [ -n "$mirror" ] || { echo "lab: no Debian mirror found in /etc/apt/sources.list.d/ for debootstrap" >&2; exit 1; }
  debootstrap --variant=minbase bookworm "$r" "$mirror" >"$LAB/debootstrap.log" 2>&1
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
  push_rootfs "$r" debian:bookworm '["bash"]'
fi
echo "lab ready: registry localhost:5000 with busybox:latest$([ "${HOIST_LAB_DEBIAN:-0}" = 1 ] && echo ' and debian:bookworm')"
