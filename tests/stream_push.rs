//! `build --push` uploads the target stage's new layers while they are compressed: the push
//! at the end finds them in the registry. When streaming fails the build warns once and the
//! push uploads them. Needs root and the lab registry on localhost:5000 (`scripts/lab-setup.sh`).

mod common;

use common::lab::{LAB_BASE as BASE, Need, ready};
use common::proxy::{Fault, Server};
use common::{hoist, text};
use std::path::Path;
use std::process::Output;

/// The `(uploaded, already there)` counts of the `pushed …` line.
fn push_counts(out: &str) -> (usize, usize) {
    let line = out
        .lines()
        .find(|l| l.starts_with("pushed "))
        .unwrap_or_else(|| panic!("no pushed line: {out}"));
    let inner = line.rsplit_once('(').unwrap().1;
    let nums: Vec<usize> = inner
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

fn context(run: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), format!("FROM {BASE}\n{run}\n")).unwrap();
    d
}

fn build_push(root: &Path, ctx: &Path, tag: &str) -> Output {
    let args = ["build", "--progress", "plain", "-t", tag, "--push"];
    let mut all: Vec<&str> = args.to_vec();
    all.push(ctx.to_str().unwrap());
    hoist(root, &all)
}

#[test]
fn the_new_layer_is_in_the_registry_before_the_push_and_pulls_back_equal() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // 20 MiB of random bytes: two 16 MiB chunks of the compressed stream.
    let ctx = context("RUN dd if=/dev/urandom of=/big bs=1M count=20 2>/dev/null && echo ok > /ok");
    let tag = format!("localhost:5000/hoist-e2e/stream:{}", std::process::id());
    let o = build_push(root.path(), ctx.path(), &tag);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(!out.contains("WARN") && !out.contains("warning"), "{out}");
    // Config uploaded; the busybox layer mounted; the RUN layer already there (streamed).
    assert_eq!(push_counts(&out), (1, 2), "{out}");

    // What the registry has pulls back (every blob verified) to the same image.
    let pushed = out.lines().find(|l| l.starts_with("pushed ")).unwrap();
    let digest = pushed.split('@').nth(1).unwrap().split(' ').next().unwrap();
    let root2 = tempfile::tempdir().unwrap();
    let p = hoist(root2.path(), &["pull", &tag]);
    assert!(p.status.success(), "{}", text(&p));
    assert!(text(&p).contains(digest), "{}", text(&p));
    let r = hoist(
        root2.path(),
        &["run", &tag, "sh", "-c", "wc -c < /big; cat /ok"],
    );
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(String::from_utf8_lossy(&r.stdout), "20971520\nok\n");
}

#[test]
fn a_failing_stream_warns_once_and_the_push_still_uploads_the_layer() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let proxy = Server::start(Some("localhost:5000".into()), None);
    // Every chunk PATCH is refused; the final push sends small blobs in one PUT.
    proxy.add_rule("PATCH", "/blobs/uploads/", Fault::Status(400, None), 1000);
    let root = tempfile::tempdir().unwrap();
    let ctx = context("RUN dd if=/dev/urandom of=/big bs=1M count=3 2>/dev/null");
    // A repository of its own: nothing in it yet, nothing to mount (another registry name).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!(
        "{}/hoist-e2e/stream-fault-{}-{nanos}:v1",
        proxy.host,
        std::process::id()
    );
    let o = build_push(root.path(), ctx.path(), &tag);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(
        out.matches("while building it failed").count(),
        1,
        "one warning: {out}"
    );
    assert!(!proxy.faults_hit().is_empty(), "the stream was tried");
    // Config, busybox layer (another registry: nothing to mount from) and the RUN layer.
    assert_eq!(push_counts(&out), (3, 0), "{out}");
    let root2 = tempfile::tempdir().unwrap();
    let p = hoist(root2.path(), &["pull", &tag]);
    assert!(p.status.success(), "{}", text(&p));
}
