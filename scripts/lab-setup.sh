#!/bin/bash
# Prepares a fresh Debian machine (as root) for hoist's tests and benchmarks:
#   - the Debian packages the tests use (OCI runtimes, a distribution registry, peers; rpm,
#     golang-go and a JDK make the SBOM tests' rpmdb, Go binary and jars), and pyspdxtools,
#   - a plain-HTTP registry on 127.0.0.1:5000 (Debian's docker-registry),
#   - base images made here: localhost:5000/busybox:latest (from busybox-static), an index
#     localhost:5000/multi/busybox:latest (amd64 + Debian's arm64 busybox-static) with qemu's
#     binfmt_misc entries registered so arm64 RUNs work, and, with HOIST_LAB_DEBIAN=1,
#     localhost:5000/debian:bookworm (debootstrap).
# Idempotent: a second run only checks.
set -euo pipefail
LAB=${HOIST_LAB:-/var/lib/hoist-lab}
REG=127.0.0.1:5000
mkdir -p "$LAB"

pkgs=(crun runc uidmap qemu-user-static libc6-dev docker-registry skopeo buildah umoci busybox-static git openssl apache2-utils zstd xz-utils bzip2 jq bc curl ca-certificates iproute2 strace binutils rpm golang-go default-jdk-headless)
[ "${HOIST_LAB_DEBIAN:-0}" = 1 ] && pkgs+=(debootstrap)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "lab: installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python libraries the signing tests use as independent oracles (cosign's encrypted key format).
python3 -c 'import nacl, cryptography' 2>/dev/null || pip install -q pynacl cryptography
# tests/sbom.rs validates SPDX documents with pyspdxtools (PyPI's spdx-tools).
command -v pyspdxtools >/dev/null 2>&1 || pip install -q spdx-tools

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

push_rootfs() { # push_rootfs DIR IMAGE CMD [ARCH]
  local arch=${4:-amd64} c; c=$(buildah from --arch "$arch" scratch)
  buildah copy -q "$c" "$1" / >/dev/null
  buildah config --arch "$arch" --os linux --cmd "$3" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  buildah commit -q "$c" "localhost:5000/$2" >/dev/null
  buildah rm "$c" >/dev/null
  buildah push -q --tls-verify=false "localhost:5000/$2" >/dev/null
}

busybox_rootfs() { # busybox_rootfs DIR BUSYBOX_BINARY: a small image root around one busybox
  local r=$1; rm -rf "$r"; mkdir -p "$r"/{bin,etc,tmp,root,home/app,var/tmp}
  cp "$2" "$r/bin/busybox"
  # The host's busybox lists the applets (the arm64 one cannot run before binfmt is set up).
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
  chmod 1777 "$r/tmp" "$r/var/tmp"; chown 1000:1000 "$r/home/app"
  printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\ndaemon:x:1:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n' >"$r/etc/group"
}

if ! have busybox:latest; then
  busybox_rootfs "$LAB/busybox-rootfs" /bin/busybox
  push_rootfs "$LAB/busybox-rootfs" busybox:latest '["sh"]'
fi

# Foreign platforms: qemu-user-static's entries in binfmt_misc (the F flag keeps the interpreter
# usable inside a sandbox's rootfs), then an arm64 busybox joined with the amd64 one in an index.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
for a in aarch64 arm; do
  [ -e "/proc/sys/fs/binfmt_misc/qemu-$a" ] || [ ! -f "/usr/lib/binfmt.d/qemu-$a.conf" ] ||
    cat "/usr/lib/binfmt.d/qemu-$a.conf" >/proc/sys/fs/binfmt_misc/register
done
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "lab: could not register qemu-aarch64 in binfmt_misc" >&2; exit 1; }
if ! have multi/busybox:latest; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -qq >/dev/null; }
  d=$LAB/busybox-arm64-deb; rm -rf "$d"; mkdir -p "$d"; chmod 777 "$d"  # apt-get download runs as _apt
  (cd "$d" && apt-get download -qq busybox-static:arm64 >/dev/null && dpkg-deb -x busybox-static_*_arm64.deb x)
  busybox_rootfs "$LAB/busybox-arm64-rootfs" "$d/x/bin/busybox"
  push_rootfs "$LAB/busybox-arm64-rootfs" busybox:arm64 '["sh"]' arm64
  buildah manifest rm "localhost:5000/multi/busybox:latest" >/dev/null 2>&1 || true
  buildah manifest create "localhost:5000/multi/busybox:latest" >/dev/null
  for t in latest arm64; do
    buildah manifest add --tls-verify=false "localhost:5000/multi/busybox:latest" "docker://localhost:5000/busybox:$t" >/dev/null
  done
  buildah manifest push -q --all --tls-verify=false "localhost:5000/multi/busybox:latest" \
    "docker://localhost:5000/multi/busybox:latest" >/dev/null
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
echo "lab ready: registry localhost:5000 with busybox:latest, multi/busybox:latest (amd64 + arm64)$([ "${HOIST_LAB_DEBIAN:-0}" = 1 ] && echo ' and debian:bookworm')"
