#!/bin/bash
# The whole test suite: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets
