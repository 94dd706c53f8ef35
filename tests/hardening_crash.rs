//! Crash loop (issue 7, "kill -9 at any point"): a build that pulls the base image, runs a
//! RUN writing a few MiB, COPYs a context file and pushes to a fresh repository is killed
//! with SIGKILL at 104 points: 2 × every progress event boundary (killed right after the
//! N-th line of `--progress=json` output) plus timed kills spread over the whole duration of
//! an uninterrupted build (measured first; offsets jittered with a fixed-seed xorshift, so
//! the schedule is the same on every run). Each kill hits a fresh store, so every phase
//! (pull, unpack, RUN, diff/commit, COPY, metadata write, push) is hit.
//!
//! After every kill, the next hoist start (`hoist fsck`) must pass with no problem and leave
//! no mount under the store, no process naming the store, no sandbox process or cgroup of
//! the killed hoist and no pool entry of it. Every 8th killed store is then rebuilt in place
//! and must give exactly the digest of the uninterrupted build (SOURCE_DATE_EPOCH fixed), and
//! the final rebuild pushes to the same repository, where the registry must serve that digest.
//!
//! Runtime: about 2–4 minutes (debug build, 2 cores).

#![allow(clippy::print_stderr)]

#[path = "hardening_util/mod.rs"]
mod util;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::*;

/// Total kills: event-boundary kills plus timed kills.
const KILLS: usize = 104;
/// Killed stores rebuilt in place (every N-th).
const REBUILD_EVERY: usize = 8;

fn context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {BASE}\n\
             RUN yes hoist-crash-loop | head -c 3145728 > /big && echo wrote\n\
             COPY data.txt /data.txt\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("data.txt"), "payload\n".repeat(1000)).unwrap();
}

fn build_args<'a>(ctx: &'a str, tag: &'a str) -> Vec<&'a str> {
    vec!["build", "--progress=json", "-t", tag, "--push", ctx]
}

/// Deterministic jitter in [0, 1).
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum KillAt {
    /// Right after the N-th line of progress output.
    Line(usize),
    /// After this long.
    Delay(Duration),
}

/// Starts the build, kills it (SIGKILL) at `at`, waits for it; returns its pid and whether
/// it had already finished by itself.
fn build_and_kill(root: &Path, ctx: &str, tag: &str, at: &KillAt) -> (u32, bool) {
    let mut child = hoist_cmd(root, &build_args(ctx, tag))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hoist");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                // Keep draining so hoist never blocks on a full pipe.
                continue;
            }
        }
    });
    match at {
        KillAt::Line(n) => {
            let mut seen = 0;
            while seen < *n {
                match rx.recv_timeout(Duration::from_secs(60)) {
                    Ok(_) => seen += 1,
                    Err(_) => break,
                }
            }
        }
        KillAt::Delay(d) => std::thread::sleep(*d),
    }
    let finished = matches!(child.try_wait(), Ok(Some(_)));
    let _ = child.kill();
    let _ = child.wait();
    drop(rx);
    let _ = reader.join();
    (pid, finished)
}

#[test]
fn kill_9_at_104_points_leaves_a_store_that_fsck_passes_and_rebuilds_identically() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let ctx_dir = work.path().join("ctx");
    context(&ctx_dir);
    let ctx = ctx_dir.to_str().unwrap();
    let tag = format!("{}:latest", fresh_repo("crash"));

    // The uninterrupted build: reference digest, duration and number of progress lines.
    // Timed on a second fresh store, as the loop's builds run (the registry has the blobs).
    let ref_root = work.path().join("reference");
    let o = hoist(&ref_root, &build_args(ctx, &tag));
    let out = ok(&o, "uninterrupted build");
    let want = manifest_digest(&out);
    let lines = String::from_utf8_lossy(&o.stderr).lines().count();
    assert!(lines >= 5, "expected progress events, got:\n{out}");
    assert_eq!(registry_digest(&tag), want);
    std::fs::remove_dir_all(&ref_root).unwrap();
    let t0 = Instant::now();
    let o = hoist(&ref_root, &build_args(ctx, &tag));
    let full = t0.elapsed();
    assert_eq!(manifest_digest(&ok(&o, "second build")), want);
    std::fs::remove_dir_all(&ref_root).unwrap();

    let mut plan: Vec<KillAt> = Vec::new();
    for _ in 0..2 {
        plan.extend((0..lines).map(KillAt::Line));
    }
    let timed = KILLS - plan.len();
    let mut rng = XorShift(0x5eed_1234_abcd_0007);
    for i in 0..timed {
        let frac = (i as f64 + rng.next()) / timed as f64;
        plan.push(KillAt::Delay(full.mul_f64(frac)));
    }
    assert_eq!(plan.len(), KILLS);

    let loop_start = Instant::now();
    let mut killed_pids = Vec::new();
    let (mut finished_alone, mut rebuilt) = (0, 0);
    for (i, at) in plan.iter().enumerate() {
        let root = work.path().join(format!("store-{i}"));
        let (pid, finished) = build_and_kill(&root, ctx, &tag, at);
        finished_alone += usize::from(finished);
        killed_pids.push(pid);
        let when = match at {
            KillAt::Line(n) => format!("after kill #{i} (after progress line {n})"),
            KillAt::Delay(d) => format!("after kill #{i} (at {d:?})"),
        };
        // The next start: fsck cleans what the dead process left in its pool, then checks.
        assert_fsck_clean(&root, &when);
        let left = leftovers(&root, pid);
        assert!(left.is_empty(), "{when}: left behind: {left:#?}");
        let scratch = scratch_files(&root);
        assert!(scratch.is_empty(), "{when}: scratch left: {scratch:#?}");
        if i % REBUILD_EVERY == REBUILD_EVERY - 1 || i == KILLS - 1 {
            let mut args = build_args(ctx, &tag);
            if i != KILLS - 1 {
                // Only the final rebuild pushes: the registry must end with its digest.
                args.retain(|a| *a != "--push");
            }
            let o = hoist(&root, &args);
            let out = ok(&o, &format!("rebuild {when}"));
            assert_eq!(manifest_digest(&out), want, "rebuild {when}");
            assert_fsck_clean(&root, &format!("rebuild {when}"));
            rebuilt += 1;
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
    assert_eq!(registry_digest(&tag), want, "the final push");
    // Late checks: nothing of any killed build came back (e.g. a runtime finishing a create).
    std::thread::sleep(Duration::from_millis(500));
    for pid in &killed_pids {
        assert!(sandbox_procs(*pid).is_empty(), "sandbox of {pid} alive");
        assert!(sandbox_cgroups(*pid).is_empty(), "cgroup of {pid} left");
    }
    assert!(mounts_under(work.path()).is_empty());
    eprintln!(
        "crash loop: {KILLS} kills ({} at event boundaries, {timed} timed over {full:?}), \
         {finished_alone} builds had finished before their kill, {rebuilt} rebuilds, loop took {:?}",
        plan.len() - timed,
        loop_start.elapsed()
    );
}
