//! End-to-end, as root, against the lab registry on localhost:5000 (busybox:latest): the
//! contents of a `RUN --mount=type=cache` dir travel with `--cache-to …,cache-mounts=true`
//! (registry and local) to a fresh store whose `--cache-from` restores them, so a step that
//! must rerun there finds them; a `--secret` never enters an exported cache mount.

#![allow(clippy::print_stderr)] // skip notes name what is missing

mod common;

use common::lab::{LAB_BASE as BASE, Need, ready};
use common::{hoist, text};
use std::io::Read;
use std::path::Path;
use std::process::Output;

fn context(dockerfile: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    d
}

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    hoist(root, &args)
}

/// A writes `note` into the cache mount `id`; B (a changed RUN, so it reruns) prints it.
fn travels(to: &str, from: &str, id: &str) {
    let note = format!("filled-by-A-{id}");
    let a_ctx = context(&format!(
        "FROM {BASE}\nRUN --mount=type=cache,id={id},target=/cache,uid=1000,mode=0750 \
         sh -c 'echo {note} > /cache/note && mkdir -p /cache/sub && echo deep > /cache/sub/f'\n"
    ));
    let b_ctx = context(&format!(
        "FROM {BASE}\nRUN --mount=type=cache,id={id},target=/cache,uid=1000,mode=0750 \
         sh -c 'echo \"seen: $(cat /cache/note) $(cat /cache/sub/f) $(stat -c %u:%a /cache)\"'\n"
    ));
    let a = tempfile::tempdir().unwrap();
    let o = build(a.path(), a_ctx.path(), &["--cache-to", to]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("1 cache mounts"), "{out}");

    // Exporting again with nothing changed gives the same mount blob: nothing new to send.
    let o = build(a.path(), a_ctx.path(), &["--cache-to", to]);
    assert!(o.status.success(), "{}", text(&o));

    let b = tempfile::tempdir().unwrap();
    let o = build(b.path(), b_ctx.path(), &["--cache-from", from]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("seen: {note} deep 1000:750")),
        "the fresh store's step saw A's cache mount:\n{out}"
    );

    // Without the import, a fresh store's step finds an empty cache.
    let c = tempfile::tempdir().unwrap();
    let o = build(c.path(), b_ctx.path(), &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(!out.contains(&note), "{out}");
}

#[test]
fn a_cache_mount_travels_through_a_registry() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let r = format!(
        "localhost:5000/hoist-e2e/mounts:{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    travels(
        &format!("type=registry,ref={r},mode=max,cache-mounts=true"),
        &format!("type=registry,ref={r}"),
        &format!("reg-{}", std::process::id()),
    );
}

#[test]
fn a_cache_mount_travels_through_a_directory() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cache");
    let d = d.to_str().unwrap();
    travels(
        &format!("type=local,dest={d},mode=max,cache-mounts=true"),
        &format!("type=local,src={d}"),
        &format!("dir-{}", std::process::id()),
    );
}

/// Every blob of a `type=local` cache, decompressed when it is gzip.
fn blob_texts(layout: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let raw = std::fs::read(e.unwrap().path()).unwrap();
        let mut plain = Vec::new();
        if raw.starts_with(&[0x1f, 0x8b]) {
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut plain)
                .unwrap();
        } else {
            plain = raw;
        }
        out.push(plain);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn secrets_never_enter_an_exported_cache_mount() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let value = format!("tok-{}-s3cr3t", std::process::id());
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("tok");
    std::fs::write(&secret, &value).unwrap();
    let secret_arg = format!("id=tok,src={}", secret.display());
    let id = format!("sec-{}", std::process::id());

    // A secret mounted inside the cache dir: only an empty stub is left there.
    let ctx = context(&format!(
        "FROM {BASE}\nRUN --mount=type=cache,id={id}-in,target=/cache \
         --mount=type=secret,id=tok,target=/cache/tok \
         sh -c 'test -s /cache/tok && echo kept > /cache/other'\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("in");
    let to = format!("type=local,dest={},cache-mounts=true", layout.display());
    let root = tempfile::tempdir().unwrap();
    let o = build(
        root.path(),
        ctx.path(),
        &["--secret", &secret_arg, "--cache-to", &to],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("1 cache mounts"), "{out}");
    let blobs = blob_texts(&layout);
    assert!(blobs.iter().any(|b| contains(b, b"kept")), "the mount went");
    assert!(
        !blobs.iter().any(|b| contains(b, value.as_bytes())),
        "secret value exported"
    );

    // A command that copies the secret into the cache: that mount is not exported at all.
    let ctx = context(&format!(
        "FROM {BASE}\nRUN --mount=type=cache,id={id}-copy,target=/cache \
         --mount=type=secret,id=tok \
         sh -c 'cp /run/secrets/tok /cache/copied && echo kept > /cache/other'\n"
    ));
    let layout = dir.path().join("copy");
    let to = format!("type=local,dest={},cache-mounts=true", layout.display());
    let o = build(
        root.path(),
        ctx.path(),
        &["--secret", &secret_arg, "--cache-to", &to],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        !blob_texts(&layout)
            .iter()
            .any(|b| contains(b, value.as_bytes())),
        "secret value exported"
    );
    assert!(
        out.contains("copied holds the value of secret \"tok\""),
        "{out}"
    );
}
