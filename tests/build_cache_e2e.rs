//! End-to-end, as root, against the lab registry on localhost:5000 (busybox:latest): the build
//! cache round-trips through a registry and a local directory between two store roots, and the
//! `--output` exporters write what other tools read. Needs root and the lab registry (see
//! `common::lab` for when a missing one skips or fails).

#![allow(clippy::print_stderr)] // skip notes name what is missing

mod common;

use common::lab::{LAB_BASE as BASE, Need, ready};
use common::{hoist, text};
use std::path::Path;
use std::process::{Command, Output};

fn context() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("Dockerfile"),
        format!(
            "FROM {BASE}\nCOPY app.txt /app/\nRUN echo built > /app/out && sleep 1\nRUN cat /app/app.txt >> /app/out\n"
        ),
    )
    .unwrap();
    std::fs::write(d.path().join("app.txt"), "payload\n").unwrap();
    d
}

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    hoist(root, &args)
}

#[test]
fn cache_round_trips_through_a_registry_between_two_stores() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = context();
    let cache_ref = format!(
        "type=registry,ref=localhost:5000/hoist-e2e/cache:{}",
        std::process::id()
    );
    let a = tempfile::tempdir().unwrap();
    let o = build(
        a.path(),
        ctx.path(),
        &["-t", "e2e/cache:a", "--cache-to", &cache_ref],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("exported build cache to"), "{}", text(&o));

    // A fresh store (another CI runner) imports it: every layer step is CACHED, none runs.
    let b = tempfile::tempdir().unwrap();
    let o = build(
        b.path(),
        ctx.path(),
        &["-t", "e2e/cache:b", "--cache-from", &cache_ref],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches(" CACHED").count(), 3, "{out}");
    // Only the base-image lookup and its FROM line finish; no step ran.
    assert_eq!(out.matches(" DONE").count(), 2, "{out}");
    let iid = |root: &Path| {
        let o = hoist(root, &["build", "-q", ctx.path().to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(
        iid(a.path()),
        iid(b.path()),
        "same image from the shared cache"
    );

    // Without the import a third store runs the steps.
    let c = tempfile::tempdir().unwrap();
    let o = build(c.path(), ctx.path(), &[]);
    assert_eq!(text(&o).matches(" CACHED").count(), 0, "{}", text(&o));
}

#[test]
fn cache_round_trips_through_a_local_directory() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = context();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("cache");
    let a = tempfile::tempdir().unwrap();
    let to = format!("type=local,dest={}", dest.display());
    let o = build(a.path(), ctx.path(), &["--cache-to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(dest.join("index.json").is_file());
    let b = tempfile::tempdir().unwrap();
    let from = format!("type=local,src={}", dest.display());
    let o = build(b.path(), ctx.path(), &["--cache-from", &from]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches(" CACHED").count(), 3, "{}", text(&o));
}

#[test]
fn outputs_oci_docker_local_and_tar() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = context();
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let p = |n: &str| out.path().join(n).display().to_string();
    let o = build(
        root.path(),
        ctx.path(),
        &[
            "-t",
            "e2e/out:1",
            "-o",
            &format!("type=oci,dest={}", p("img.oci.tar")),
            "-o",
            &format!("type=docker,dest={}", p("img.docker.tar")),
            "-o",
            &format!("type=local,dest={}", p("rootfs")),
            "-o",
            &format!("type=tar,dest={}", p("rootfs.tar")),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(out.path().join("rootfs/app/out")).unwrap(),
        "built\npayload\n"
    );
    assert!(out.path().join("rootfs/bin/busybox").exists());
    let listing = Command::new("tar")
        .arg("tf")
        .arg(p("rootfs.tar"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .any(|l| l == "app/out")
    );
    for (kind, file) in [
        ("oci-archive", "img.oci.tar"),
        ("docker-archive", "img.docker.tar"),
    ] {
        let s = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("{kind}:{}", p(file)))
            .output();
        let Ok(s) = s else {
            eprintln!("skopeo missing: archive checked by listing only");
            continue;
        };
        assert!(s.status.success(), "{kind}: {}", text(&s));
        let m: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 4, "{m}");
    }
}

#[test]
fn unchanged_rebuild_runs_nothing_and_pushes_nothing_new() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = context();
    let root = tempfile::tempdir().unwrap();
    let tag = format!("localhost:5000/hoist-e2e/rebuild:{}", std::process::id());
    let o = build(root.path(), ctx.path(), &["-t", &tag, "--push"]);
    let first = text(&o);
    assert!(o.status.success(), "{first}");
    assert!(first.contains("blobs uploaded"), "{first}");
    let o = build(root.path(), ctx.path(), &["-t", &tag, "--push"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches(" CACHED").count(), 3, "{out}");
    assert!(
        out.contains("(0 blobs uploaded, 5 already in the registry)"),
        "{out}"
    );
    let digest = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("pushed "))
            .and_then(|l| l.split('@').nth(1))
            .map(|d| d.split(' ').next().unwrap_or_default().to_string())
    };
    assert_eq!(digest(&first), digest(&out), "same manifest both times");
}
