//! Issue 7: `RUN --mount=type=cache,source=SUB` (SUB of the cache dir itself, as in BuildKit)
//! while a parallel stage swaps SUB for a symlink to a host directory: the vector of BuildKit
//! CVE-2024-23651. Checked end to end with the real binary as root against the lab registry.
//!
//! Stage `swap` keeps `sub` in a shared cache flipping between a symlink to a directory of the
//! cache (`real`, marker "inside-sub") and an absolute symlink to a host directory `H` (marker
//! "outside"); the cache also holds `H`'s path recreated inside it (marker "inside-clamped"),
//! where an in-root resolution of that symlink lands. busybox has no
//! `renameat2(RENAME_EXCHANGE)` and a directory cannot be renamed over a symlink, so both states
//! are symlinks, each put in place by one atomic rename: `sub` always exists, and every probe
//! must succeed. Stage `probe`, in parallel, mounts `source=sub` in 200 RUN steps and records
//! what each saw. Nothing may read "outside", both inside values must show up (the swap really
//! raced the probes), and the build leaves no mount, no process and an untouched host dir.

#![allow(clippy::print_stderr)] // the counts of the race, for the security matrix

#[path = "hardening_util/mod.rs"]
mod util;

use std::path::Path;
use std::time::Instant;
use util::*;

const PROBES: usize = 200;

fn mountinfo() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every entry under `dir` with its content (files) or target (symlinks).
fn listing(dir: &Path) -> Vec<(String, String)> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .map(|e| {
            let what = if e.path_is_symlink() {
                format!(
                    "-> {}",
                    std::fs::read_link(e.path()).unwrap().to_string_lossy()
                )
            } else if e.file_type().is_file() {
                std::fs::read_to_string(e.path()).unwrap()
            } else {
                "dir".into()
            };
            (e.path().display().to_string(), what)
        })
        .collect()
}

fn dockerfile(host: &str) -> String {
    let mut d = format!(
        "# syntax=docker/dockerfile:1\n\
         FROM {BASE} AS swap\n\
         RUN --mount=type=cache,id=race,target=/c <<'EOF'\n\
         set -e\n\
         mkdir -p /c/real '/c{host}'\n\
         echo inside-sub > /c/real/marker\n\
         echo inside-clamped > '/c{host}/marker'\n\
         ln -s real /c/sub.new && mv -T /c/sub.new /c/sub\n\
         touch /c/ready\n\
         i=0\n\
         end=$(( $(date +%s) + 120 ))\n\
         while [ ! -e /c/done ]; do\n\
         ln -s '{host}' /c/sub.new && mv -T /c/sub.new /c/sub\n\
         ln -s real /c/sub.new && mv -T /c/sub.new /c/sub\n\
         i=$((i + 1))\n\
         if [ $((i % 64)) -eq 0 ] && [ $(date +%s) -ge $end ]; then break; fi\n\
         done\n\
         echo $i > /swaps\n\
         EOF\n\
         FROM {BASE} AS probe\n\
         RUN --mount=type=cache,id=race,target=/c \
         n=0; while [ ! -e /c/ready ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done; \
         test -e /c/ready\n"
    );
    for n in 1..=PROBES {
        d.push_str(&format!(
            "RUN --mount=type=cache,id=race,source=sub,target=/m \
             --mount=type=cache,id=seen,target=/s \
             {{ cat /m/marker || echo missing-{n}; }} >> /s/seen\n"
        ));
    }
    d.push_str(
        "RUN --mount=type=cache,id=race,target=/c --mount=type=cache,id=seen,target=/s \
         touch /c/done && cp /s/seen /seen\n\
         FROM scratch\n\
         COPY --from=swap /swaps /swaps\n\
         COPY --from=probe /seen /seen\n",
    );
    d
}

#[test]
fn cache_source_swapped_for_a_symlink_by_a_parallel_stage_never_escapes() {
    if !can_run() {
        return;
    }
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("marker"), "outside\n").unwrap();
    let host_before = listing(host.path());
    let root = tempfile::tempdir().unwrap();
    ok(&hoist(root.path(), &["pull", BASE]), "pull");
    let ctx = tempfile::tempdir().unwrap();
    let h = host.path().to_string_lossy().into_owned();
    assert!(!h.contains('\''), "{h}");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile(&h)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let mounts_before = mountinfo();

    let started = Instant::now();
    let child = hoist_cmd(
        root.path(),
        &[
            "build",
            "--progress",
            "plain",
            "-o",
            &dest,
            &ctx.path().to_string_lossy(),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!t.contains("panicked"), "{t}");
    // `sub` exists at every instant (atomic renames): every probe mounts and the build works.
    assert!(o.status.success(), "build failed after {took:?}:\n{t}");

    let seen = std::fs::read_to_string(out.path().join("seen")).unwrap();
    let swaps: u64 = std::fs::read_to_string(out.path().join("swaps"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    let count = |v: &str| lines.iter().filter(|l| **l == v).count();
    let (sub, clamped, outside) = (
        count("inside-sub"),
        count("inside-clamped"),
        count("outside"),
    );
    eprintln!(
        "{PROBES} probes in {took:?}: inside-sub {sub}, inside-clamped {clamped}, outside \
         {outside}; {swaps} swap rounds"
    );
    assert_eq!(
        outside, 0,
        "a probe read the host dir through the symlink:\n{seen}"
    );
    assert_eq!(lines.len(), PROBES, "one line per probe:\n{seen}");
    assert_eq!(sub + clamped, PROBES, "unexpected values:\n{seen}");
    // Not vacuous: the swap loop ran while the probes did, and they met both states.
    assert!(
        sub > 0 && clamped > 0,
        "the probes met one state only:\n{seen}"
    );
    assert!(swaps >= PROBES as u64, "only {swaps} swap rounds");

    // Nothing left behind: no mount, process, cgroup or pool entry; the host dir untouched.
    assert_eq!(listing(host.path()), host_before, "the host dir changed");
    let new_mounts: Vec<String> = mountinfo()
        .into_iter()
        .filter(|m| !mounts_before.contains(m))
        .filter(|m| m.contains(&*root.path().to_string_lossy()) || m.contains(&h))
        .collect();
    assert!(new_mounts.is_empty(), "mounts left: {new_mounts:?}");
    let left = leftovers(root.path(), pid);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_fsck_clean(root.path(), "after the race");
}
