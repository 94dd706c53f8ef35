//! Automatic garbage collection end to end, as root against the lab registry (issue 19):
//! builds whose RUN writes new data, under a small `builder.gc` limit given through
//! `HOIST_CONFIG`, leave the store under the limit plus one build; the pass is reported with
//! `--progress=plain`; `enabled: false` turns it off; `hoist system df` shows the split.

#![allow(clippy::print_stderr)] // skip notes name what is missing

mod common;

use common::lab::{LAB_BASE as BASE, Need, ready};
use common::{Hoist, text};
use std::path::Path;

/// Bytes each build's RUN writes (random, so compression keeps it).
const DATA: u64 = 50_000_000;
const LIMIT: u64 = 120_000_000;

fn context() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("Dockerfile"),
        format!("FROM {BASE}\nARG N\nRUN head -c {DATA} /dev/urandom > /data-$N\n"),
    )
    .unwrap();
    d
}

fn config(dir: &Path, gc: &str) -> std::path::PathBuf {
    let p = dir.join("config.json");
    std::fs::write(&p, format!(r#"{{"builder": {{"gc": {gc}}}}}"#)).unwrap();
    p
}

/// Bytes of files under the store's blobs, snapshots and cache mounts.
fn store_bytes(root: &Path) -> u64 {
    ["blobs", "snapshots", "cache-mounts"]
        .iter()
        .flat_map(|d| walkdir::WalkDir::new(root.join(d)).into_iter().flatten())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn build(root: &Path, ctx: &Path, cfg: &Path, n: u32) -> String {
    let o = Hoist::new(root)
        .env("HOIST_CONFIG", cfg)
        .args(["build", "--progress", "plain", "--build-arg"])
        .arg(format!("N={n}"))
        .arg(ctx)
        .output();
    assert!(o.status.success(), "build {n}: {}", text(&o));
    text(&o)
}

#[test]
fn four_cold_builds_under_a_small_limit_stay_under_it_plus_one_build() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = context();
    let root = tempfile::tempdir().unwrap();
    let cfg = config(
        ctx.path(),
        r#"{"enabled": true, "defaultKeepStorage": "120MB"}"#,
    );
    let mut reported = false;
    for n in 0..4 {
        let out = build(root.path(), ctx.path(), &cfg, n);
        reported |= out.contains("garbage collection: removed");
        let bytes = store_bytes(root.path());
        // One build adds its blob and its snapshot (2 × DATA) plus the base image.
        assert!(
            bytes <= LIMIT + 2 * DATA + 10_000_000,
            "after build {n}: store holds {bytes} bytes\n{out}"
        );
    }
    assert!(reported, "no garbage collection was reported");

    // The newest build's cache survives: it rebuilds from cache.
    let out = build(root.path(), ctx.path(), &cfg, 3);
    assert!(out.contains("CACHED"), "{out}");

    let df = Hoist::new(root.path())
        .env("HOIST_CONFIG", &cfg)
        .args(["system", "df"])
        .output();
    assert!(df.status.success(), "{}", text(&df));
    let df = String::from_utf8_lossy(&df.stdout).into_owned();
    for kind in [
        "TYPE",
        "Images",
        "Build Cache",
        "Cache Mounts",
        "Snapshots",
        "Unreferenced",
    ] {
        assert!(df.contains(kind), "{kind} missing:\n{df}");
    }
    let cache_line = df.lines().find(|l| l.starts_with("Build Cache")).unwrap();
    let fields: Vec<&str> = cache_line.split_whitespace().collect();
    assert!(fields[2].parse::<u32>().unwrap() >= 1, "{df}");
}

#[test]
fn gc_disabled_keeps_everything_and_prune_applies_the_policy() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = context();
    let root = tempfile::tempdir().unwrap();
    let off = config(
        ctx.path(),
        r#"{"enabled": false, "defaultKeepStorage": "120MB"}"#,
    );
    for n in 10..13 {
        let out = build(root.path(), ctx.path(), &off, n);
        assert!(!out.contains("garbage collection"), "{out}");
    }
    let bytes = store_bytes(root.path());
    assert!(bytes > 5 * DATA, "nothing should have gone: {bytes} bytes");

    // `hoist prune` without flags applies the configured policy.
    let dir = tempfile::tempdir().unwrap();
    let on = config(dir.path(), r#"{"defaultKeepStorage": "120MB"}"#);
    let o = Hoist::new(root.path())
        .env("HOIST_CONFIG", &on)
        .arg("prune")
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let bytes = store_bytes(root.path());
    assert!(bytes <= LIMIT, "after prune: {bytes} bytes\n{}", text(&o));
}

#[test]
fn a_bad_gc_setting_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), r#"{"defaultKeepStorage": "lots"}"#);
    let o = Hoist::new(dir.path())
        .env("HOIST_CONFIG", &cfg)
        .arg("prune")
        .output();
    assert!(!o.status.success());
    let err = text(&o);
    assert!(
        err.contains("config.json: defaultKeepStorage: \"lots\": expected a size like 20GB"),
        "{err}"
    );
}
