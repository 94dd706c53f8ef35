#!/bin/bash
# Quick start, part two: the whole test suite. Installs what the tests need (Debian packages,
# a local registry on 127.0.0.1:5000 with a busybox base image), then runs every test.
# Run as root: sandbox, overlay and extraction tests use the real kernel.
set -euo pipefail
# The lab is set up below, so a test missing root, the registry or an OCI runtime is a failure
# here, not a skip (tests/common/lab.rs).
export HOIST_REQUIRE_LAB=1
# The mode-2 test runs hoist (linked against glibc) inside a Debian image.
export HOIST_LAB_DEBIAN=1
cd "$(dirname "$0")/.."
scripts/lab-setup.sh
cargo build --release -q
cargo test --all-targets --no-fail-fast
