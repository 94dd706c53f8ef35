#!/bin/bash
# kit-as-user.sh USER [CASE...]: the conformance kit (../shared/conformance) with hoist running as
# an ordinary USER (rootless mode 1) instead of root. Contexts are staged as root (the kit's
# stage.sh sets their modes), then handed to USER; hoist runs as USER with its own store, pushes,
# and the result is compared with BuildKit's golden like check.sh does. Run as root from the
# project root; HOIST names the binary (default target/release/hoist; USER must reach it).
set -uo pipefail
user=$1; shift
kit=${KIT:-$(cd "$(dirname "$0")/../../shared/conformance" && pwd)}
HOIST=${HOIST:-$PWD/target/release/hoist}
work=${KIT_USER_DIR:-/tmp/hoist-kit-$user}; rm -rf "$work"; mkdir -p "$work"; chmod 755 "$work"
home=$work/home; mkdir -p "$home"; chown "$user:" "$home"
cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=($(ls "$kit/gold" | sed 's/\.json$//'))
as_user() { setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups -- \
  env HOME="$home" XDG_RUNTIME_DIR="$home" XDG_DATA_HOME="$home/data" "$@"; }
ok=0
for c in "${cases[@]}"; do
  ctx=$work/ctx/$c; mkdir -p "$work/ctx"
  read -ra extra <<<"$("$kit/stage.sh" "$c" "$ctx")"
  chown -R --no-dereference "$user:" "$ctx" "$ctx.secret" 2>/dev/null
  if as_user "$HOIST" --root "$home/store" build -t "localhost:5000/hoist-user/$c:latest" --push "${extra[@]}" "$ctx" >"$ctx.log" 2>&1; then
    python3 "$kit/snapshot.py" "localhost:5000/hoist-user/$c:latest" "$(cat "$kit/cases/$c/base")" >"$ctx.json" 2>/dev/null
    if out=$(python3 "$kit/compare.py" "$kit/gold/$c.json" "$ctx.json" "$(cat "$kit/cases/$c/ignore" 2>/dev/null)"); then
      printf '%-20s match\n' "$c"; ok=$((ok+1))
    else printf '%-20s DIFFER\n%s\n' "$c" "$out"; fi
  else
    printf '%-20s FAILED  (%s)\n' "$c" "$(tail -n 2 "$ctx.log" | tr '\n' ' ' | cut -c1-160)"
  fi
done
echo "$ok/${#cases[@]} cases match as $user"
[ "$ok" -eq "${#cases[@]}" ]
