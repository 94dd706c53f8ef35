//! Disk errors injected into the real binary (issue 7, Reliability).
//!
//! `fsync`/`fdatasync`, with `strace -f -e inject=…`: every `fsync` hoist makes is a store
//! write (blobs, metadata, snapshots), so failing the Nth one with ENOSPC or EIO hits each
//! step of `hoist pull` and `hoist build`.
//!
//! `write`/`pwrite64`/`writev`/`pwritev`/`copy_file_range`, with an `LD_PRELOAD` shim
//! (`hardening_util/faultwrite.c`, built with the system C compiler) that fails the Nth write
//! to a file under the store, or the Nth and every later one (`N+`). `strace -f -c` on a
//! build shows hoist writes blob, layer, snapshot and metadata files with `write` only
//! (`writev` goes to sockets, `copy_file_range` to pipes), but strace 6.1 counts a syscall per
//! thread and cannot pick a file: injecting into `write` fails tokio's eventfd wake-ups first
//! (a panic inside tokio, "failed to wake I/O driver") and stderr, which no failing disk does.
//!
//! Each run must fail cleanly (exit 1, no panic, an error naming a path in the store and the
//! errno), leave a store that `hoist fsck` passes (every blob hashes to its name: no partial
//! blob under its final name), no scratch file under `<root>/tmp`, no mount, process or
//! cgroup, and the same command must then succeed with the same digest. Also: stdout or
//! stderr on a full disk (`/dev/full`) or a closed pipe never makes hoist panic.
#![allow(clippy::print_stderr)] // injection counts, for the security matrix

#[path = "hardening_util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use util::*;

fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `hoist ARGS` under strace, failing the `n`th fsync of each thread with `errno`.
fn injected(root: &Path, args: &[&str], errno: &str, n: u32) -> std::process::Output {
    let mut c = Command::new("strace");
    c.args([
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=fsync,fdatasync",
    ])
    .arg("-e")
    .arg(format!("inject=fsync,fdatasync:error={errno}:when={n}"));
    common::run::Hoist::under(c, root)
        .args(args)
        .epoch(EPOCH)
        .output()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A failed run: exit 1, no panic, the error names a store path and the errno; or a run that
/// the injection missed (fewer fsyncs than `n` on every thread), which must then have worked.
/// Returns whether it failed.
fn check_run(o: &std::process::Output, root: &Path, errno: &str, what: &str) -> bool {
    let t = text(o);
    assert!(!t.contains("panicked"), "{what}: panic\n{t}");
    if o.status.success() {
        return false;
    }
    assert_eq!(o.status.code(), Some(1), "{what}: exit code\n{t}");
    let want = if errno == "ENOSPC" {
        "No space left on device"
    } else {
        "Input/output error"
    };
    let err: Vec<&str> = t.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(
        err.iter()
            .any(|l| l.contains(want) && l.contains(&*root.to_string_lossy())),
        "{what}: the error must name the store path and say {want:?}:\n{t}"
    );
    assert!(
        err.iter().all(|l| l.matches(want).count() <= 1),
        "{what}: the cause is repeated:\n{t}"
    );
    true
}

fn assert_store_clean(root: &Path, what: &str) {
    assert_fsck_clean(root, what);
    let scratch = scratch_files(root);
    assert!(scratch.is_empty(), "{what}: scratch left: {scratch:?}");
    assert!(mounts_under(root).is_empty(), "{what}: mounts left");
}

#[test]
fn enospc_and_eio_during_pull_fail_cleanly_and_recover() {
    if !can_run() || !strace_available() {
        return;
    }
    let mut failed = 0;
    for errno in ["ENOSPC", "EIO"] {
        for n in 1..=5 {
            let root = tempfile::tempdir().unwrap();
            let what = format!("pull with fsync #{n} failing {errno}");
            let o = injected(root.path(), &["pull", BASE], errno, n);
            if check_run(&o, root.path(), errno, &what) {
                failed += 1;
            }
            assert_store_clean(root.path(), &what);
            let o = hoist(root.path(), &["pull", BASE]);
            let t = ok(&o, &format!("pull after {what}"));
            assert!(t.contains("Digest: sha256:"), "{t}");
            assert_store_clean(root.path(), &format!("after the retry of {what}"));
        }
    }
    assert!(failed >= 6, "the injection hit only {failed} of 10 pulls");
}

#[test]
fn enospc_and_eio_during_build_fail_cleanly_and_rebuild_identically() {
    if !can_run() || !strace_available() {
        return;
    }
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("a.txt"), "copied\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {BASE}\nCOPY a.txt /a.txt\nRUN echo built > /b.txt\n"),
    )
    .unwrap();
    let c = ctx.path().to_string_lossy().into_owned();
    let args = ["build", "--progress", "plain", "-t", "local/faults:1", &c];
    let clean = tempfile::tempdir().unwrap();
    let want = manifest_digest(&ok(&hoist(clean.path(), &args), "clean build"));
    let mut failed = 0;
    for errno in ["ENOSPC", "EIO"] {
        for n in 1..=4 {
            let root = tempfile::tempdir().unwrap();
            ok(&hoist(root.path(), &["pull", BASE]), "pull");
            let what = format!("build with fsync #{n} failing {errno}");
            let o = injected(root.path(), &args, errno, n);
            if check_run(&o, root.path(), errno, &what) {
                failed += 1;
            }
            assert_store_clean(root.path(), &what);
            let got = manifest_digest(&ok(
                &hoist(root.path(), &args),
                &format!("build after {what}"),
            ));
            assert_eq!(got, want, "{what}: the rebuild differs from a clean build");
            assert_store_clean(root.path(), &format!("after the rebuild of {what}"));
        }
    }
    assert!(failed >= 4, "the injection hit only {failed} of 8 builds");
}

#[test]
fn full_or_closed_stdout_and_stderr_never_panic() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    ok(&hoist(root.path(), &["pull", BASE]), "pull");
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    // stdout on a full disk: the command fails, saying so.
    let o = hoist_cmd(root.path(), &["images"])
        .stdout(full())
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("<stdout>: No space left on device"), "{t}");
    // stderr on a full disk: no panic (exit 0 for a pull that works, 1 for one that fails).
    let o = hoist_cmd(root.path(), &["pull", BASE])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = hoist_cmd(root.path(), &["inspect", "no/such:image"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    // A closed pipe (`hoist images | head -0`) is not an error.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = hoist_cmd(root.path(), &["inspect", BASE])
        .stdout(writer)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!t.contains("panicked"), "{t}");
    assert_eq!(o.status.code(), Some(0), "{t}");
}

/// The write-fault shim, built once into a temp dir; `None` (the tests skip, saying why)
/// without a C compiler.
fn faultwrite_so() -> Option<PathBuf> {
    static SO: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    SO.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hardening_util/faultwrite.c");
        let dir = std::env::temp_dir().join(format!("hoist-faultwrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let so = dir.join("faultwrite.so");
        let built = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&so)
            .arg(&src)
            .arg("-ldl")
            .status()
            .is_ok_and(|s| s.success());
        if !built {
            eprintln!("skipped: no C compiler to build {}", src.display());
            return None;
        }
        Some(so)
    })
    .clone()
}

/// `hoist ARGS` with the shim failing store write `when` (`N` or `N+`; `0` fails none).
/// Returns the output, the pid, the failed writes (every store write for `0`) as
/// `CALL #N PATH`, and the number of store writes made.
fn write_injected(
    so: &Path,
    root: &Path,
    args: &[&str],
    errno: &str,
    when: &str,
) -> (std::process::Output, u32, Vec<String>, u64) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = hoist_cmd(root, args)
        .env("LD_PRELOAD", so)
        .env("HOIST_FAULT_ROOT", root)
        .env("HOIST_FAULT_ERRNO", errno)
        .env("HOIST_FAULT_WHEN", when)
        .env("HOIST_FAULT_LOG", log.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hoist");
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let lines = std::fs::read_to_string(log.path()).unwrap();
    let hits: Vec<String> = lines
        .lines()
        .filter_map(|l| {
            l.strip_prefix("failed ")
                .or_else(|| l.strip_prefix("seen "))
        })
        .map(str::to_string)
        .collect();
    let total = lines
        .lines()
        .filter_map(|l| l.strip_prefix("total "))
        .filter_map(|n| n.parse().ok())
        .next_back()
        .expect("the shim was loaded");
    (o, pid, hits, total)
}

/// What a store write (`CALL #N PATH`, from the shim's log) wrote to: the store path with its
/// random and hex parts elided, e.g. `write tmp/…/blob-…`.
fn write_kind(hit: &str, root: &Path) -> String {
    let mut parts = hit.splitn(3, ' ');
    let call = parts.next().unwrap_or_default();
    let path = parts.nth(1).unwrap_or_default();
    let rel = Path::new(path)
        .strip_prefix(root)
        .unwrap_or(Path::new(path));
    let elided: Vec<String> = rel
        .iter()
        .take(3)
        .map(|c| {
            let c = c.to_string_lossy();
            match c.split_once('-') {
                _ if c.len() >= 16 && c.chars().all(|x| x.is_ascii_hexdigit()) => "…".into(),
                _ if c.starts_with(".tmp") => ".tmp…".into(),
                Some((head, _)) => format!("{head}-…"),
                None => c.into_owned(),
            }
        })
        .collect();
    format!("{call} {}", elided.join("/"))
}

/// `when=` points over the store writes `seen` of a clean run (`CALL #N PATH`, `total` in
/// all): the first write of each kind of file (blob, metadata, snapshot, sandbox config…),
/// the first, a quarter, half, three quarters and the last write, then the first and the
/// middle one with every later write failing too.
fn spread(seen: &[String], total: u64, root: &Path) -> Vec<String> {
    let mut kinds = std::collections::BTreeSet::new();
    let mut v: Vec<u64> = seen
        .iter()
        .filter(|w| kinds.insert(write_kind(w, root)))
        .filter_map(|w| w.split(' ').nth(1)?.strip_prefix('#')?.parse().ok())
        .collect();
    v.extend([1, total / 4, total / 2, total * 3 / 4, total].map(|n| n.max(1)));
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<String> = v.iter().map(|n| n.to_string()).collect();
    out.push("1+".into());
    out.push(format!("{}+", (total / 2).max(1)));
    out
}

/// Checks one write-injected run (see [`check_run`]); a run whose writes all succeeded must
/// have worked. Also: nothing left behind by the process. Returns whether it failed.
fn check_write_run(
    o: &std::process::Output,
    pid: u32,
    hits: &[String],
    root: &Path,
    errno: &str,
    what: &str,
) -> bool {
    let t = text(o);
    // The context-hash cache (`cache/content`) is best effort by design: `engine::build`
    // ignores a failed save (the next build hashes again). Its temp file must still go.
    // So is the store's record of the boot it was last opened in (`meta/.boot-id-*`), and the
    // garbage collector's remembered sizes (`meta/.gc-usage-*`: a failed save means the next
    // pass measures again).
    let best_effort = |h: &String| {
        h.contains(&format!("{}/cache/content/", root.display()))
            // The cache-miss explanation's record: a failed write loses one explanation.
            || h.contains(&format!("{}/cache/inputs/", root.display()))
            || h.contains(&format!("{}/meta/.boot-id-", root.display()))
            || h.contains(&format!("{}/meta/.gc-usage-", root.display()))
    };
    if hits.iter().all(best_effort) {
        assert!(
            hits.is_empty() || o.status.success(),
            "{what}: only the hash cache failed, yet:\n{t}"
        );
        let tmp: Vec<_> = std::fs::read_dir(root.join("cache/content"))
            .into_iter()
            .chain(std::fs::read_dir(root.join("cache/inputs")))
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .map(|e| e.path())
            .collect();
        assert!(tmp.is_empty(), "{what}: temp files left: {tmp:?}");
        let gc_tmp: Vec<_> = std::fs::read_dir(root.join("meta"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".gc-usage-"))
            .map(|e| e.path())
            .collect();
        assert!(gc_tmp.is_empty(), "{what}: gc temp files left: {gc_tmp:?}");
    }
    if hits.is_empty() {
        assert!(o.status.success(), "{what}: no write failed, yet:\n{t}");
    } else if !hits.iter().all(best_effort) {
        assert!(
            !o.status.success(),
            "{what}: store writes failed ({hits:?}) but the command succeeded:\n{t}"
        );
    }
    let failed = check_run(o, root, errno, what);
    let left = leftovers(root, pid);
    assert!(left.is_empty(), "{what}: left behind: {left:?}");
    failed
}

#[test]
fn enospc_and_eio_in_store_writes_during_pull_fail_cleanly_and_recover() {
    if !can_run() {
        return;
    }
    let Some(so) = faultwrite_so() else {
        return;
    };
    let count = tempfile::tempdir().unwrap();
    let count_root = count.path().canonicalize().unwrap();
    let (o, _, seen, total) = write_injected(&so, &count_root, &["pull", BASE], "ENOSPC", "0");
    ok(&o, "counting pull");
    assert!(total >= 4, "a pull made only {total} store writes");
    let (mut runs, mut failed, mut hit) = (0, 0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    // ENOSPC and EIO take turns over the points (the same paths handle both).
    for (i, when) in spread(&seen, total, &count_root).into_iter().enumerate() {
        let errno = ["ENOSPC", "EIO"][i % 2];
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let what = format!("pull with store write {when} of {total} failing {errno}");
        let (o, pid, hits, _) = write_injected(&so, &root, &["pull", BASE], errno, &when);
        runs += 1;
        hit += hits.len();
        kinds.extend(hits.iter().map(|h| write_kind(h, &root)));
        if check_write_run(&o, pid, &hits, &root, errno, &what) {
            failed += 1;
        }
        assert_store_clean(&root, &what);
        let t = ok(
            &hoist(&root, &["pull", BASE]),
            &format!("pull after {what}"),
        );
        assert!(t.contains("Digest: sha256:"), "{t}");
        assert_store_clean(&root, &format!("after the retry of {what}"));
    }
    eprintln!(
        "pull: {total} store writes; {runs} runs, {failed} failed, {hit} writes failed: {kinds:?}"
    );
    assert!(
        failed * 4 >= runs * 3,
        "the injection failed only {failed} of {runs} pulls"
    );
    assert!(
        kinds.contains("write tmp/…/blob-…"),
        "no blob write failed: {kinds:?}"
    );
}

#[test]
fn enospc_and_eio_in_store_writes_during_build_fail_cleanly_and_rebuild_identically() {
    if !can_run() {
        return;
    }
    let Some(so) = faultwrite_so() else {
        return;
    };
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("a.txt"), "copied\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {BASE}\nCOPY a.txt /a.txt\nRUN echo built > /b.txt\n"),
    )
    .unwrap();
    let c = ctx.path().to_string_lossy().into_owned();
    let args = ["build", "--progress", "plain", "-t", "local/wfaults:1", &c];
    let clean = tempfile::tempdir().unwrap();
    let clean_root = clean.path().canonicalize().unwrap();
    ok(&hoist(&clean_root, &["pull", BASE]), "pull");
    let (o, _, seen, total) = write_injected(&so, &clean_root, &args, "ENOSPC", "0");
    let want = manifest_digest(&ok(&o, "clean build"));
    assert!(total >= 8, "a build made only {total} store writes");
    let (mut runs, mut failed, mut hit) = (0, 0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    // ENOSPC and EIO take turns over the points (the same paths handle both).
    for (i, when) in spread(&seen, total, &clean_root).into_iter().enumerate() {
        let errno = ["ENOSPC", "EIO"][i % 2];
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        ok(&hoist(&root, &["pull", BASE]), "pull");
        let what = format!("build with store write {when} of {total} failing {errno}");
        let (o, pid, hits, _) = write_injected(&so, &root, &args, errno, &when);
        runs += 1;
        hit += hits.len();
        kinds.extend(hits.iter().map(|h| write_kind(h, &root)));
        if check_write_run(&o, pid, &hits, &root, errno, &what) {
            failed += 1;
        }
        assert_store_clean(&root, &what);
        let got = manifest_digest(&ok(&hoist(&root, &args), &format!("build after {what}")));
        assert_eq!(got, want, "{what}: the rebuild differs from a clean build");
        assert_store_clean(&root, &format!("after the rebuild of {what}"));
    }
    eprintln!(
        "build: {total} store writes; {runs} runs, {failed} failed, {hit} writes failed: {kinds:?}"
    );
    assert!(
        failed * 4 >= runs * 3,
        "the injection failed only {failed} of {runs} builds"
    );
    // Layer blobs, snapshots, metadata and the sandbox's files all met a failing write.
    for kind in [
        "write tmp/…/blob-…",
        "write tmp/…/t-…",
        "write meta/.tmp…",
        "write tmp/sandbox/hoist-…",
    ] {
        assert!(kinds.contains(kind), "no {kind} failed: {kinds:?}");
    }
}
