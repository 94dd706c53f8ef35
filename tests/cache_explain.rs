//! Every cache miss explained (issue 17): a rebuild's plain progress says on a `cache miss`
//! line why each step ran — the changed file of a COPY, the changed build arg of a RUN (never
//! the value of a secret-looking one), a new base image's digests, `--no-cache` — and a warm
//! rebuild prints none; `--explain-cache` says the same without running anything.

mod common;

use common::lab::{Need, ready};
use common::{Hoist, text};
use std::path::Path;

const DF: &str = "FROM localhost:5000/busybox:latest
ARG VERSION=1
ARG API_TOKEN=none
COPY . /app/
RUN echo \"v=$VERSION\" > /version
RUN echo \"$API_TOKEN\" | wc -c > /token-len
";

fn build(root: &Path, ctx: &Path, args: &[&str]) -> String {
    let o = Hoist::new(root)
        .args(["build", "--progress", "plain", "-t", "explain:test"])
        .args(args)
        .arg(ctx)
        .output();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    out
}

fn miss_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.contains("cache miss")).collect()
}

#[test]
fn rebuild_names_the_changed_file_and_build_arg() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DF).unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello\n").unwrap();
    std::fs::write(ctx.path().join("other.txt"), "unchanged\n").unwrap();
    let secret1 = "--build-arg=API_TOKEN=first-secret-value";
    let secret2 = "--build-arg=API_TOKEN=second-secret-value";

    let first = build(root.path(), ctx.path(), &["--build-arg=VERSION=1", secret1]);
    assert!(
        miss_lines(&first)
            .iter()
            .any(|l| l.contains("no cache entry existed")),
        "{first}"
    );

    // Nothing changed: every step is a hit, and a hit says nothing.
    let warm = build(root.path(), ctx.path(), &["--build-arg=VERSION=1", secret1]);
    assert!(miss_lines(&warm).is_empty(), "{warm}");

    // One file and one build arg changed.
    std::fs::write(ctx.path().join("hello.txt"), "hello again\n").unwrap();
    let out = build(root.path(), ctx.path(), &["--build-arg=VERSION=2", secret1]);
    let misses = miss_lines(&out);
    assert!(
        misses
            .iter()
            .any(|l| l.contains("files changed: /app/hello.txt (content changed)")),
        "{out}"
    );
    assert!(!misses.iter().any(|l| l.contains("other.txt")), "{out}");
    assert!(
        misses
            .iter()
            .any(|l| l.contains("build arg VERSION changed (\"1\" → \"2\")")),
        "{out}"
    );

    // A secret-looking arg is named, its values never shown.
    let out = build(root.path(), ctx.path(), &["--build-arg=VERSION=2", secret2]);
    assert!(
        miss_lines(&out)
            .iter()
            .any(|l| l.ends_with("cache miss: build arg API_TOKEN changed")),
        "{out}"
    );
    assert!(
        !out.contains("first-secret-value") && !out.contains("second-secret-value"),
        "{out}"
    );
    // Nor are they kept in clear in the records behind the explanations.
    let inputs = root.path().join("cache/inputs");
    for e in std::fs::read_dir(&inputs).unwrap() {
        let body = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(!body.contains("secret-value"), "{body}");
    }

    let forced = build(
        root.path(),
        ctx.path(),
        &["--no-cache", "--build-arg=VERSION=2", secret2],
    );
    let misses = miss_lines(&forced);
    assert_eq!(misses.len(), 3, "{forced}");
    assert!(
        misses.iter().all(|l| l.contains("--no-cache asked for it")),
        "{forced}"
    );
}

#[test]
fn json_progress_carries_the_reason() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM localhost:5000/busybox:latest\nCOPY a /a\n",
    )
    .unwrap();
    std::fs::write(ctx.path().join("a"), "1").unwrap();
    let run = || {
        let o = Hoist::new(root.path())
            .args(["build", "--progress", "json", "-t", "explain:json"])
            .arg(ctx.path())
            .output();
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    run();
    std::fs::set_permissions(
        ctx.path().join("a"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = run();
    let ev: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["event"] == "cache miss")
        .collect();
    assert_eq!(ev.len(), 1, "{out}");
    assert_eq!(ev[0]["reason"], "files changed: /a (mode changed)", "{out}");
}

#[test]
fn explain_cache_reports_without_building() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DF).unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello\n").unwrap();
    build(root.path(), ctx.path(), &[]);
    let explain = |extra: &[&str]| {
        let mut args = vec!["--explain-cache"];
        args.extend_from_slice(extra);
        build(root.path(), ctx.path(), &args)
    };
    let warm = explain(&[]);
    assert!(miss_lines(&warm).is_empty(), "{warm}");
    assert_eq!(warm.matches(" CACHED").count(), 3, "{warm}");

    std::fs::write(ctx.path().join("hello.txt"), "changed\n").unwrap();
    let out = explain(&["--build-arg=VERSION=7"]);
    let misses = miss_lines(&out);
    assert_eq!(misses.len(), 3, "{out}");
    assert!(
        misses[0].contains("files changed: /app/hello.txt (content changed)"),
        "{out}"
    );
    assert!(
        misses[1].contains("build arg VERSION changed (\"1\" → \"7\")"),
        "{out}"
    );
    // Nothing ran: no RUN output, no image line, and the real build still has it all to do,
    // for the same reasons (explaining records nothing).
    for m in &misses {
        let id = m.split(' ').next().unwrap();
        assert!(!out.contains(&format!("{id} DONE")), "{out}");
    }
    assert!(!out.contains("built "), "{out}");
    let built = build(root.path(), ctx.path(), &["--build-arg=VERSION=7"]);
    assert_eq!(miss_lines(&built), misses, "{built}");
}

#[test]
fn a_new_base_image_is_named_with_both_digests() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "ARG BASE=localhost:5000/busybox:latest\nFROM $BASE\nRUN echo hi > /hi\n",
    )
    .unwrap();
    build(root.path(), ctx.path(), &[]);
    let out = build(
        root.path(),
        ctx.path(),
        &["--build-arg=BASE=localhost:5000/debian:bookworm"],
    );
    let misses = miss_lines(&out);
    assert_eq!(misses.len(), 1, "{out}");
    let (old, new) = misses[0]
        .split_once("cache miss: the base image changed (")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .and_then(|r| r.split_once(" → "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(old.starts_with("sha256:") && new.starts_with("sha256:") && old != new);
    assert!(out.contains(&format!("debian:bookworm@{new}")), "{out}");
}
