//! `hoist build --reproducible` end to end (issue 16): the epoch is the context's git HEAD
//! commit time (0 outside git, `$SOURCE_DATE_EPOCH` when set), and two builds of one commit
//! in fresh stores give one manifest digest even when a context file's mtime changed and a
//! RUN wrote files at a different "now". The base image's history keeps its times.

mod common;

use common::lab::{LAB_BASE, Need, ready};
use common::{Hoist, text};
use std::path::Path;
use std::process::Command;

// ENV first: a step with no layer copies the base's `created`, later than the epoch.
const DF: &str = "FROM localhost:5000/busybox:latest
ENV X=1
COPY f /app/f
RUN mkdir -p /out && echo made > /out/made
";

/// 2020-09-13T12:26:40Z, the commit time of every test repo.
const COMMIT_TIME: i64 = 1_600_000_000;

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_COMMITTER_DATE", format!("@{COMMIT_TIME} +0000"))
        .env("GIT_AUTHOR_DATE", "@1500000000 +0000")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("run git");
    assert!(o.status.success(), "git {args:?}: {o:?}");
}

fn context(in_git: bool) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    fill(ctx.path(), in_git);
    ctx
}

fn fill(dir: &Path, in_git: bool) {
    std::fs::write(dir.join("Dockerfile"), DF).unwrap();
    std::fs::write(dir.join("f"), "from the context\n").unwrap();
    if in_git {
        git(dir, &["init", "-q"]);
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "one"]);
    }
}

/// Builds `ctx` with `--reproducible` in a fresh store; returns (manifest digest, config).
fn build(ctx: impl AsRef<std::ffi::OsStr>, sde: Option<&str>) -> (String, serde_json::Value) {
    let root = tempfile::tempdir().unwrap();
    build_in(root.path(), ctx, sde)
}

/// Builds `ctx` with `--reproducible` in the store at `root`.
fn build_in(
    root: &Path,
    ctx: impl AsRef<std::ffi::OsStr>,
    sde: Option<&str>,
) -> (String, serde_json::Value) {
    let mut h = Hoist::new(root);
    if let Some(s) = sde {
        h = h.epoch(s);
    }
    let o = h
        .args(["build", "-q", "--reproducible", "-t", "repro"])
        .arg(ctx)
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let o = Hoist::new(root).args(["inspect", "repro"]).output();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let base = Hoist::new(root).args(["inspect", LAB_BASE]).output();
    let b: serde_json::Value = serde_json::from_slice(&base.stdout).unwrap();
    let hist = |v: &serde_json::Value| v["Config"]["history"].as_array().unwrap().clone();
    let (own, base) = (hist(&v[0]), hist(&b[0]));
    assert_eq!(
        own[..base.len()],
        base[..],
        "the base image's history was rewritten"
    );
    (
        v[0]["Digest"].as_str().unwrap().to_string(),
        v[0]["Config"].clone(),
    )
}

#[test]
fn one_commit_built_twice_in_fresh_stores_gives_one_digest() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = context(true);
    let (first, config) = build(ctx.path(), None);
    assert_eq!(config["created"], "2020-09-13T12:26:40Z", "{config}");
    let hist = config["history"].as_array().unwrap();
    assert!(
        hist.iter()
            .rev()
            .take(3)
            .all(|h| h["created"] == "2020-09-13T12:26:40Z"),
        "{hist:?}"
    );
    // Another "now" for the RUN's files and a new mtime on a context file: same commit.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = Command::new("touch")
        .arg(ctx.path().join("f"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let (second, _) = build(ctx.path(), None);
    assert_eq!(first, second, "two builds of one commit differ");

    // A store holding the same steps built without an epoch: they are not reused.
    let warm = tempfile::tempdir().unwrap();
    let o = Hoist::new(warm.path())
        .args(["build", "-q", "-t", "plain"])
        .arg(ctx.path())
        .output();
    assert!(o.status.success(), "{}", text(&o));
    let (third, _) = build_in(warm.path(), ctx.path(), None);
    assert_eq!(first, third, "layers cached without the epoch were reused");
}

#[test]
fn outside_git_the_epoch_is_zero_and_source_date_epoch_wins() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let plain = context(false);
    let (_, config) = build(plain.path(), None);
    assert_eq!(config["created"], "1970-01-01T00:00:00Z", "{config}");

    let repo = context(true);
    let (_, config) = build(repo.path(), Some("1700000000"));
    assert_eq!(config["created"], "2023-11-14T22:13:20Z", "{config}");
}

/// A throwaway `git daemon` serving one repository; killed on drop.
fn git_server() -> common::git::GitServer {
    common::require("git", "git");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    fill(&work, true);
    git(dir.path(), &["clone", "-q", "--bare", "work", "repo.git"]);
    common::git::serve(dir)
}

#[test]
fn a_git_url_context_takes_the_fetched_commits_time() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let server = git_server();
    let (first, config) = build(&server.url, None);
    assert_eq!(config["created"], "2020-09-13T12:26:40Z", "{config}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, _) = build(&server.url, None);
    assert_eq!(first, second, "two builds of one fetched commit differ");
}
