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
# A logged-in user's processes sit in a session cgroup of their own (pam_systemd's
# session-N.scope, a leaf), and that is what a rootless RUN shows under /sys/fs/cgroup (hoist
# cannot make cgroups without delegation, so the runtime binds the one hoist runs in). Run the
# user's hoist in such a leaf in every hierarchy, as a login would, rather than in this root
# shell's cgroup, which on a host may hold other workloads' cgroups below it.
session=hoist-kit-session-$$
enter_session() {
  local m
  for m in $(awk '$9 ~ /^cgroup2?$/ && $5 ~ /^\/sys\/fs\/cgroup/ {print $5}' /proc/self/mountinfo); do
    mkdir -p "$m/$session" 2>/dev/null || continue
    [ -f "$m/cpuset.cpus" ] && cat "$m/cpuset.cpus" >"$m/$session/cpuset.cpus" && cat "$m/cpuset.mems" >"$m/$session/cpuset.mems"
    echo "$BASHPID" >"$m/$session/cgroup.procs" 2>/dev/null
  done
}
leave_session() {
  local m
  for m in $(awk '$9 ~ /^cgroup2?$/ && $5 ~ /^\/sys\/fs\/cgroup/ {print $5}' /proc/self/mountinfo); do
    rmdir "$m/$session" 2>/dev/null
  done
}
trap leave_session EXIT
as_user() { enter_session; setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups -- \
  env HOME="$home" XDG_RUNTIME_DIR="$home" XDG_DATA_HOME="$home/data" "$@"; }
ok=0
for c in "${cases[@]}"; do
  ctx=$work/ctx/$c; mkdir -p "$work/ctx"
  read -ra extra <<<"$("$kit/stage.sh" "$c" "$ctx")"
  chown -R --no-dereference "$user:" "$ctx" "$ctx.secret" 2>/dev/null
  if (as_user "$HOIST" --root "$home/store" build -t "localhost:5000/hoist-user/$c:latest" --push "${extra[@]}" "$ctx" >"$ctx.log" 2>&1); then
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
