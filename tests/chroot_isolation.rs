//! The chroot isolation (issue 15, mode 2: a pod with Docker's default privileges, where hoist
//! can neither mount nor make namespaces; `src/executor/chroot/`). The real binary builds with
//! `HOIST_ISOLATION=chroot` and with the default backend, at the same `SOURCE_DATE_EPOCH`: the
//! images must be the same, digest for digest, and the chroot one must keep BuildKit's rules
//! (deletions as whiteouts, caches kept between builds, secrets in no layer).

mod common;

use common::{Hoist, Need, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EPOCH: &str = "1700000000";
const SECRET: &str = "s3cret-value-never-in-a-layer";

const DOCKERFILE: &str = "FROM localhost:5000/busybox:latest
RUN mkdir -p /data && echo one > /data/a && echo two > /data/b && echo x > /etc/motd
COPY hello.txt /data/hello.txt
RUN rm /data/a && echo changed > /data/b && chmod 600 /data/hello.txt && rm -rf /home
RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/log; echo \"cache lines: $(wc -l < /cache/log)\"'
RUN --mount=type=secret,id=tok sh -c 'test \"$(cat /run/secrets/tok)\" = s3cret-value-never-in-a-layer && echo ok > /data/secret-seen && echo null > /dev/null'
";

fn ready() -> bool {
    common::ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime])
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed:\n{}", text(o));
}

/// A context with the Dockerfile, and the secret's file beside it.
fn context() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("ctx")).unwrap();
    std::fs::write(d.path().join("ctx/Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(d.path().join("ctx/hello.txt"), "hello\n").unwrap();
    std::fs::write(d.path().join("tok"), SECRET).unwrap();
    d
}

fn build(store: &Path, ctx: &Path, isolation: &str, extra: &[&str]) -> Output {
    Hoist::new(store)
        .epoch(EPOCH)
        .env("HOIST_ISOLATION", isolation)
        .args(["build", "--progress", "plain", "-t", "chroot-test:1"])
        .arg("--secret")
        .arg(format!("id=tok,src={}", ctx.join("tok").display()))
        .args(extra)
        .arg(ctx.join("ctx"))
        .output()
}

/// `hoist inspect IMAGE`'s manifest.
fn manifest(store: &Path) -> serde_json::Value {
    let o = Hoist::new(store)
        .args(["inspect", "chroot-test:1"])
        .output();
    ok(&o, "inspect");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = match v {
        serde_json::Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        v => v,
    };
    v["Manifest"].clone()
}

fn layer_blobs(store: &Path, manifest: &serde_json::Value) -> Vec<PathBuf> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap();
            store
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        })
        .collect()
}

/// Names in a gzip layer.
fn names(blob: &Path) -> Vec<String> {
    let o = Command::new("tar").arg("-tzf").arg(blob).output().unwrap();
    assert!(o.status.success(), "tar -tzf {}", blob.display());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A layer's uncompressed bytes.
fn raw(blob: &Path) -> Vec<u8> {
    let o = Command::new("gzip").arg("-dc").arg(blob).output().unwrap();
    assert!(o.status.success());
    o.stdout
}

#[test]
fn chroot_build_equals_the_default_backend() {
    if !ready() {
        return;
    }
    let ctx = context();
    let chroot_store = tempfile::tempdir().unwrap();
    let oci_store = tempfile::tempdir().unwrap();

    let o = build(chroot_store.path(), ctx.path(), "chroot", &[]);
    ok(&o, "chroot build");
    let out = text(&o);
    assert_eq!(
        out.matches("note: isolation: chroot").count(),
        1,
        "the isolation is named once:\n{out}"
    );
    assert!(out.contains("cache lines: 1"), "{out}");

    let o = build(oci_store.path(), ctx.path(), "oci", &[]);
    ok(&o, "oci build");
    assert!(!text(&o).contains("note: isolation"), "{}", text(&o));

    let (mc, mo) = (manifest(chroot_store.path()), manifest(oci_store.path()));
    assert_eq!(mc, mo, "same layers and config, digest for digest");

    let blobs = layer_blobs(chroot_store.path(), &mc);
    // busybox, RUN, COPY, RUN (deletes), RUN cache, RUN secret.
    assert_eq!(blobs.len(), 6);
    let deletes = names(&blobs[3]);
    for want in ["data/.wh.a", ".wh.home", "data/b", "data/hello.txt"] {
        assert!(deletes.iter().any(|n| n == want), "{want} in {deletes:?}");
    }
    // Neither the cache, the secret, nor the sandbox's /dev and /etc files reach a layer.
    let last = names(&blobs[5]);
    assert!(
        !last
            .iter()
            .any(|n| n.starts_with("run") || n.starts_with("dev/") || n.starts_with("etc/")),
        "{last:?}"
    );
    assert!(!names(&blobs[4]).iter().any(|n| n.starts_with("cache/")));
    for b in &blobs {
        let bytes = raw(b);
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret is in {}",
            b.display()
        );
    }

    // The cache mount's writes were copied back: a rebuild sees the first build's line.
    let o = build(chroot_store.path(), ctx.path(), "chroot", &["--no-cache"]);
    ok(&o, "chroot rebuild");
    assert!(text(&o).contains("cache lines: 2"), "{}", text(&o));
    assert_eq!(manifest(chroot_store.path()), mo);
    // Nothing is left in the pool.
    let pool = chroot_store.path().join("tmp");
    let left: Vec<_> = walk_names(&pool);
    assert!(left.iter().all(|n| !n.contains("hoist-")), "{left:?}");
}

fn walk_names(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            out.push(e.path().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk_names(&e.path()));
            }
        }
    }
    out
}

#[test]
fn an_unknown_isolation_is_named() {
    let store = tempfile::tempdir().unwrap();
    let ctx = context();
    let o = build(store.path(), ctx.path(), "vm", &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("HOIST_ISOLATION=\"vm\": expected `oci` or `chroot`"),
        "{}",
        text(&o)
    );
}

/// Mode 2 end to end: hoist itself runs inside a container that `hoist run` makes with
/// Docker's default capabilities (no CAP_SYS_ADMIN) and seccomp profile, detects that it can
/// neither mount nor make namespaces, builds with the chroot isolation and pushes. The image
/// equals the default backend's build on the host, layer for layer: where the container's
/// overlay rootfs refuses whiteout devices, the chroot diff writes marker files that the layer
/// writer puts in the tar exactly as the devices.
#[test]
fn inside_a_default_privilege_container_hoist_detects_chroot_and_pushes() {
    if !ready() {
        return;
    }
    let ctx = context();
    let outer = tempfile::tempdir().unwrap();
    let img = tempfile::tempdir().unwrap();
    std::fs::copy(common::run::BIN, img.path().join("hoist")).unwrap();
    std::fs::write(
        img.path().join("Dockerfile"),
        "FROM localhost:5000/debian:bookworm\nCOPY hoist /usr/local/bin/hoist\n\
         COPY ctx /ctx\nCOPY tok /tok\n",
    )
    .unwrap();
    let cp = Command::new("cp")
        .arg("-r")
        .arg(ctx.path().join("ctx"))
        .arg(ctx.path().join("tok"))
        .arg(img.path())
        .status()
        .unwrap();
    assert!(cp.success());
    let o = Hoist::new(outer.path())
        .args(["build", "-t", "mode2-inner:1"])
        .arg(img.path())
        .output();
    ok(&o, "building the image with hoist in it");

    let tag = format!("localhost:5000/mode2/app:{}", std::process::id());
    let o = Hoist::new(outer.path())
        .args([
            "run",
            "-e",
            &format!("SOURCE_DATE_EPOCH={EPOCH}"),
            "mode2-inner:1",
        ])
        .args(["sh", "-c"])
        .arg(format!(
            "grep -E '^(CapEff|Seccomp):' /proc/self/status; hoist --root /var/lib/hoist \
             build --progress plain --secret id=tok,src=/tok -t {tag} --push /ctx"
        ))
        .output();
    ok(&o, "hoist inside the container");
    let out = text(&o);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("CapEff:\t00000000a80425fb"),
        "Docker's default caps: {out}"
    );
    assert_eq!(out.matches("note: isolation: chroot").count(), 1, "{out}");
    assert!(out.contains(&format!("pushed {tag}@")), "{out}");

    // The default backend on the host, same inputs and epoch.
    let host = tempfile::tempdir().unwrap();
    ok(&build(host.path(), ctx.path(), "oci", &[]), "host build");
    let want = manifest(host.path());
    let o = Hoist::new(host.path()).args(["pull", &tag]).output();
    ok(&o, "pull");
    let o = Hoist::new(host.path()).args(["inspect", &tag]).output();
    ok(&o, "inspect");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = match v {
        serde_json::Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        v => v,
    };
    let got = v["Manifest"].clone();
    let (gb, wb) = (
        layer_blobs(host.path(), &got),
        layer_blobs(host.path(), &want),
    );
    assert_eq!(gb.len(), wb.len());
    for (i, (g, w)) in gb.iter().zip(&wb).enumerate() {
        assert_eq!(
            names(g),
            names(w),
            "layer {i}: entries or their order differ"
        );
    }
    assert_eq!(got, want, "the image differs from the default backend's");
}

/// Bind sources and cache sub-dirs reach the chroot as pinned `/proc/self/fd/N` links: they
/// must be copied as the dirs they name (a regression: the link was copied as a symlink and
/// the copy wrote through it, truncating the context's file), and the context never changes.
#[test]
fn bind_and_cache_sources_are_copied_in_and_the_context_stays_intact() {
    if !ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let ctx = d.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("sub/f"), "from-sub\n").unwrap();
    std::fs::write(ctx.join("top.txt"), "top\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM localhost:5000/busybox:latest
RUN --mount=type=bind,source=sub,target=/m --mount=type=bind,source=top.txt,target=/t.txt \
    sh -c 'cat /m/f /t.txt > /copied'
RUN --mount=type=cache,id=c1,target=/c sh -c 'mkdir -p /c/s && echo in-cache > /c/s/x'
RUN --mount=type=cache,id=c1,target=/c2,source=s sh -c 'cat /c2/x > /from-cache'
",
    )
    .unwrap();
    let mut manifests = Vec::new();
    for iso in ["chroot", "oci"] {
        let store = tempfile::tempdir().unwrap();
        let o = Hoist::new(store.path())
            .epoch(EPOCH)
            .env("HOIST_ISOLATION", iso)
            .args(["build", "--progress", "plain", "-t", "chroot-test:1"])
            .arg(&ctx)
            .output();
        ok(&o, iso);
        manifests.push(manifest(store.path()));
        assert_eq!(
            std::fs::read_to_string(ctx.join("sub/f")).unwrap(),
            "from-sub\n",
            "{iso}: the context is unchanged"
        );
    }
    assert_eq!(manifests[0], manifests[1]);
}
