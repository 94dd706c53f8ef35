#!/bin/sh
# Builds hoist's CI image (deploy/Dockerfile) with hoist itself:
#   1. a static hoist for this machine's architecture (the gnu target with `crt-static`:
#      static glibc; see docs/ci.md for why not musl), in its own target dir;
#   2. `hoist build` of deploy/Dockerfile with that binary as the whole context, run by the
#      binary it just built: the CI image builds with one hoist command.
#
# usage: scripts/ci-image.sh [--push] [--target T] [--base REF] [--insecure-registry HOST] IMAGE
#   --push          push IMAGE when built (credentials: Docker's config.json, `hoist login`)
#   --target T      build another target of the Dockerfile (`runtime`: Debian with runc)
#   --base REF      the Debian image the CA bundle and busybox come from (default: the
#                   Dockerfile's, debian:bookworm-slim)
#   --insecure-registry HOST   a plain-HTTP registry (repeatable), for a lab registry
# Environment: HOIST (the hoist that runs the build; default: the static one just built),
# HOIST_STATIC_TARGET_DIR (default: target/static), CARGO (default: cargo), HOIST_ROOT (the
# store the build uses; hoist's default otherwise).
set -eu

usage() { sed -n "s/^# \{0,1\}//;8,16p" "$0" >&2; exit "${1:-2}"; }

push=""
target=""
base=""
globals=""
image=""
while [ $# -gt 0 ]; do
    case "$1" in
        --push) push="--push" ;;
        --target) target="${2:?--target needs a value}"; shift ;;
        --base) base="${2:?--base needs a value}"; shift ;;
        --insecure-registry) globals="$globals --insecure-registry ${2:?--insecure-registry needs a value}"; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "ci-image.sh: unknown option $1" >&2; usage ;;
        *) [ -z "$image" ] || usage; image="$1" ;;
    esac
    shift
done
[ -n "$image" ] || usage

repo=$(cd "$(dirname "$0")/.." && pwd)
cargo=${CARGO:-cargo}
triple=$(rustc -vV | sed -n 's/^host: //p')
case "$triple" in
    *-linux-gnu) ;;
    *) echo "ci-image.sh: expected a linux-gnu host toolchain, got $triple" >&2; exit 1 ;;
esac
tdir=${HOIST_STATIC_TARGET_DIR:-$repo/target/static}

echo "ci-image.sh: building a static hoist for $triple in $tdir" >&2
# --target keeps RUSTFLAGS off build scripts and proc macros, which cannot be static.
(cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" \
    "$cargo" build --release --locked --target "$triple" --target-dir "$tdir")
bin="$tdir/$triple/release/hoist"

# A dynamically linked binary would not run on scratch: refuse it here, not in the pod.
if command -v readelf >/dev/null 2>&1 && readelf -l "$bin" | grep -q 'program interpreter'; then
    echo "ci-image.sh: $bin is dynamically linked (crt-static had no effect?)" >&2
    exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT INT TERM
cp "$bin" "$ctx/hoist"

set -- build -f "$repo/deploy/Dockerfile" -t "$image"
[ -z "$push" ] || set -- "$@" --push
[ -z "$target" ] || set -- "$@" --target "$target"
[ -z "$base" ] || set -- "$@" --build-arg "BASE=$base"
# shellcheck disable=SC2086 # $globals is a list of words by construction
"${HOIST:-$bin}" $globals "$@" "$ctx"
