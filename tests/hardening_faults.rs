//! Disk errors injected with `strace -f -e inject=…` into the real binary (issue 7,
//! Reliability): every `fsync` hoist makes is a store write (blobs, metadata, snapshots), so
//! failing the Nth one with ENOSPC or EIO hits each step of `hoist pull` and `hoist build`.
//! Each run must fail cleanly (exit 1, no panic, an error naming a path in the store), leave
//! a store that `hoist fsck` passes and no scratch file under `<root>/tmp`, and the same
//! command must then succeed with the same digest. Also: stdout or stderr on a full disk
//! (`/dev/full`) or a closed pipe never makes hoist panic.

#[path = "hardening_util/mod.rs"]
mod util;

use std::path::Path;
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
    .arg(format!("inject=fsync,fdatasync:error={errno}:when={n}"))
    .arg(env!("CARGO_BIN_EXE_hoist"))
    .arg("--root")
    .arg(root)
    .args(args)
    .env("SOURCE_DATE_EPOCH", EPOCH)
    .env_remove("HOIST_ROOT")
    .stdin(Stdio::null());
    c.output().expect("run strace")
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
