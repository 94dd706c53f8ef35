#!/bin/bash
# lint-oracle.sh CASE_DIR...: asks a running BuildKit for its build-check findings on each
# tests/fixtures/lint/CASE (Dockerfile, optional .dockerignore, optional `args` with KEY=VALUE
# build args) and writes them to CASE/expected, the text `tests/lint_fixtures.rs` replays.
# Development tool: needs buildctl and a buildkitd (BUILDCTL, BUILDKIT_ADDR).
set -euo pipefail
BUILDCTL=${BUILDCTL:-/opt/bk/bin/buildctl}
ADDR=${BUILDKIT_ADDR:-unix:///run/bk/buildkitd.sock}
for d in "$@"; do
  opts=()
  if [ -f "$d/args" ]; then
    while IFS= read -r kv; do [ -n "$kv" ] && opts+=(--opt "build-arg:$kv"); done <"$d/args"
  fi
  "$BUILDCTL" --addr "$ADDR" build --frontend dockerfile.v0 --local "context=$d" \
    --local "dockerfile=$d" --opt requestid=frontend.lint \
    --opt frontend.caps=moby.buildkit.frontend.subrequests "${opts[@]}" >"$d/expected" 2>/dev/null
  echo "$d: $(grep -c '^WARNING: ' "$d/expected" || true) findings"
done
