//! `hoist diff` end to end (issue 16): two builds of one context without `--reproducible`
//! differ in `created` and in the mtimes of the files a RUN wrote, and diff says so (text and
//! JSON, exit 1); rebuilt with `--reproducible` (no cache, a touched context file) they are
//! identical (exit 0); a bad flag is exit 2.

mod common;

use common::lab::{Need, ready};
use common::{Hoist, text};
use std::path::Path;

const DF: &str = "FROM localhost:5000/busybox:latest
COPY f /app/f
RUN mkdir -p /out && echo made > /out/made
";

fn build(root: &Path, ctx: &Path, tag: &str, extra: &[&str]) {
    let o = Hoist::new(root)
        .args(["build", "-q", "--no-cache", "-t", tag])
        .args(extra)
        .arg(ctx)
        .output();
    assert!(o.status.success(), "{}", text(&o));
}

fn diff(root: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = Hoist::new(root).arg("diff").args(args).output();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn diff_explains_an_unreproducible_build_and_passes_a_reproducible_one() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DF).unwrap();
    std::fs::write(ctx.path().join("f"), "one\n").unwrap();
    build(root.path(), ctx.path(), "a", &[]);
    // Another second for `created` and the RUN's files; other content and mode for f.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(ctx.path().join("f"), "two\n").unwrap();
    build(root.path(), ctx.path(), "b", &[]);

    let (code, out) = diff(root.path(), &["a", "b"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("layer 0: identical"), "{out}");
    assert!(out.contains("  created:"), "{out}");
    assert!(out.contains("changed  /app/f: content"), "{out}");
    assert!(out.contains("changed  /out/made: mtime"), "{out}");

    let (code, out) = diff(root.path(), &["--format", "json", "a", "b"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["identical"], false);
    assert!(
        v["config"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "created"),
        "{v}"
    );
    let layers = v["layers"].as_array().unwrap();
    let run = layers.last().unwrap();
    assert_eq!(run["status"], "changed", "{run}");
    let made = run["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/out/made")
        .unwrap_or_else(|| panic!("{run}"));
    assert_eq!(made["status"], "changed");
    assert_eq!(made["changes"][0]["aspect"], "mtime", "{made}");

    // Reproducible: rebuilt without cache after a touch, the images are one.
    build(root.path(), ctx.path(), "r1", &["--reproducible"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(ctx.path().join("f"), "two\n").unwrap();
    build(root.path(), ctx.path(), "r2", &["--reproducible"]);
    let (code, out) = diff(root.path(), &["r1", "r2"]);
    assert_eq!((code, out.as_str()), (Some(0), "r1 and r2 are identical\n"));

    let (code, _) = diff(root.path(), &["--format", "yaml", "r1", "r2"]);
    assert_eq!(code, Some(2));
}
