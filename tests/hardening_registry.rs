//! Issue 7 registry gaps found by the security matrix (docs/security-matrix.md), against a real
//! `docker-registry` behind the fault-injecting proxy of tests/common:
//! - a config declared over 8 MiB is refused before any byte of it is fetched;
//! - a blob answered with more bytes than its descriptor says is cut off and refused;
//! - foreign layer `urls` are never contacted;
//! - `user:pass@` and token query strings of a redirect target never reach errors or progress;
//! - time limits (the binary): a registry stalled mid-blob or never answering an upload ends
//!   the pull or push at `--registry-timeout` / HOIST_REGISTRY_TIMEOUT with a message naming
//!   it and nothing half-written; slow but progressing downloads and uploads outlast the idle
//!   timeout; a stall that recovers is cut by the idle timeout and resumed.

mod common;

use common::lab::{Need, ready};
use common::proxy::{Fault, Server};
use common::{Auth, Hoist, Registry, blob_names, fixture_image, noise, text};
use hoist::oci::{Digest, Platform};
use hoist::registry::{Client, ImageRef, Progress, RegistryError, RegistryOptions};
use hoist::store::Store;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn client(cfg: &Path) -> Client {
    let mut c = Client::new(RegistryOptions {
        insecure: vec![],
        docker_config_dir: Some(cfg.to_path_buf()),
    })
    .unwrap();
    c.set_retry(3, Duration::from_millis(20), Duration::from_millis(200));
    c
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

/// A registry with one pushed fixture image, the proxy in front of it, and the image's
/// manifest (as JSON) and layer.
struct Lab {
    _reg: Registry,
    proxy: Server,
    cfg: tempfile::TempDir,
    manifest: serde_json::Value,
    layer: Digest,
    layer_bytes: Vec<u8>,
}

fn lab(repo: &str) -> Lab {
    let reg = Registry::start(Auth::None);
    let proxy = Server::start(Some(reg.host.clone()), None);
    let cfg = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let a = Store::open(src.path()).unwrap();
    let md = fixture_image(&a, "local/x:1", &[("f", noise(50_000, 7))]);
    let dest = ImageRef::parse(&format!("{}/{repo}:v1", reg.host)).unwrap();
    client(cfg.path()).push(&a, &md, &dest).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&a.read_blob(&md).unwrap()).unwrap();
    let layer = a.load_image(&md).unwrap().0.layers[0].digest.clone();
    let layer_bytes = a.read_blob(&layer).unwrap();
    Lab {
        _reg: reg,
        proxy,
        cfg,
        manifest,
        layer,
        layer_bytes,
    }
}

impl Lab {
    /// Serves `manifest` under `tag` through the proxy and returns the reference to pull.
    fn serve(&self, repo: &str, tag: &str, manifest: &serde_json::Value) -> ImageRef {
        self.proxy.add_rule(
            "GET",
            &format!("/manifests/{tag}"),
            Fault::Serve(
                hoist::oci::media::OCI_MANIFEST.into(),
                serde_json::to_vec(manifest).unwrap(),
            ),
            100,
        );
        ImageRef::parse(&format!("{}/{repo}:{tag}", self.proxy.host)).unwrap()
    }
}

#[test]
fn a_config_declared_over_8_mib_is_refused_before_download() {
    let l = lab("h/cfg");
    let mut m = l.manifest.clone();
    m["config"]["size"] = serde_json::json!((8u64 << 20) + 1);
    let r = l.serve("h/cfg", "bigcfg", &m);
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let e = client(l.cfg.path()).pull(&r, &amd64(), &b).unwrap_err();
    assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
    assert!(
        !l.proxy.seen().iter().any(|s| s.path.contains("/blobs/")),
        "no blob was fetched: {:?}",
        l.proxy.seen()
    );
    assert!(blob_names(tb.path()).is_empty());
}

#[test]
fn a_blob_longer_than_its_descriptor_is_cut_off_and_refused() {
    let l = lab("h/long");
    let r = ImageRef::parse(&format!("{}/h/long:v1", l.proxy.host)).unwrap();
    // The right bytes, then 4 MiB more.
    let mut body = l.layer_bytes.clone();
    body.extend(noise(4 << 20, 9));
    l.proxy.add_rule(
        "GET",
        &format!("/blobs/{}", l.layer),
        Fault::Serve("application/octet-stream".into(), body),
        100,
    );
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let e = client(l.cfg.path()).pull(&r, &amd64(), &b).unwrap_err();
    assert!(matches!(e, RegistryError::SizeMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&l.layer.to_string()), "{e}");
    assert!(!b.has_blob(&l.layer));
    assert!(!blob_names(tb.path()).contains(l.layer.hex()));
    assert!(b.list_images().unwrap().is_empty());
}

#[test]
fn foreign_layer_urls_are_never_contacted() {
    let l = lab("h/foreign");
    let cdn = Server::start(None, None);
    cdn.add_rule(
        "GET",
        "/",
        Fault::Serve("application/octet-stream".into(), b"evil".to_vec()),
        100,
    );
    let mut m = l.manifest.clone();
    m["layers"][0]["urls"] = serde_json::json!([
        format!("http://{}/layer.tar.gz", cdn.host),
        format!("http://{}/other", cdn.host)
    ]);
    let r = l.serve("h/foreign", "urls", &m);
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    client(l.cfg.path()).pull(&r, &amd64(), &b).unwrap();
    assert_eq!(b.read_blob(&l.layer).unwrap(), l.layer_bytes);
    assert!(cdn.seen().is_empty(), "{:?}", cdn.seen());
}

#[test]
fn userinfo_and_token_query_strings_are_redacted_in_errors_and_progress() {
    let l = lab("h/redact");
    // A closed port: the redirect target never answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let secrets = ["hunter2pw", "SIGSECRET", "TOKSECRET", "CREDSECRET"];
    l.proxy.add_rule(
        "GET",
        &format!("/blobs/{}", l.layer),
        Fault::Redirect(format!(
            "http://bob:hunter2pw@127.0.0.1:{port}/blob?X-Amz-Signature=SIGSECRET&token=TOKSECRET&X-Amz-Credential=CREDSECRET&keep=visible"
        )),
        100,
    );
    let r = ImageRef::parse(&format!("{}/h/redact:v1", l.proxy.host)).unwrap();
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let mut c = client(l.cfg.path());
    let log = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let lg = log.clone();
    c.set_progress(move |p: &Progress| lg.lock().unwrap().push(p.clone()));
    let e = c.pull(&r, &amd64(), &b).unwrap_err();
    let text = format!("{e} / {e:?}");
    let progress = format!("{:?}", log.lock().unwrap());
    for s in secrets {
        assert!(!text.contains(s), "{s} leaked into the error: {text}");
        assert!(
            !progress.contains(s),
            "{s} leaked into progress: {progress}"
        );
    }
    assert!(!b.has_blob(&l.layer));
}

#[test]
fn credentials_in_a_reference_are_refused_without_echoing_them() {
    if !ready(&[Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // A local image to push and tag (the lab registry's busybox).
    let base = "localhost:5000/busybox:latest";
    let o = Hoist::new(root.path()).args(["pull", base]).output();
    assert!(o.status.success(), "{o:?}: run scripts/lab-setup.sh");
    let cases: [&[&str]; 4] = [
        &["pull", "bob:s3cretpw@localhost:5000/busybox:latest"],
        &["pull", "https://bob:s3cretpw@localhost:5000/busybox"],
        &["push", base, "bob:s3cretpw@localhost:5000/x:1"],
        &["tag", base, "bob:s3cretpw@localhost:5000/x:2"],
    ];
    for args in cases {
        let o = Hoist::new(root.path()).args(args).output();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {t}");
        assert!(!t.contains("s3cretpw"), "{args:?} echoed the password: {t}");
        assert!(t.contains("hoist login"), "{args:?}: {t}");
    }
}

#[test]
fn credentials_in_a_dockerfile_from_are_never_echoed() {
    // The Dockerfile excerpt, the progress lines (plain and json) and the final error all
    // quote the FROM line; none may show the password.
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bob:s3cretpw@localhost:5000/busybox:latest\nRUN true\n",
    )
    .unwrap();
    for progress in ["plain", "json"] {
        let o = Hoist::new(root.path())
            .args(["build", "--progress", progress, "-t", "x"])
            .arg(ctx.path())
            .output();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(
            !t.contains("s3cretpw"),
            "{progress} echoed the password: {t}"
        );
        assert!(t.contains("<redacted>@localhost:5000/busybox"), "{t}");
        assert!(t.contains("Dockerfile:1"), "{t}");
    }
}

// ---------------------------------------------------------------------------------------------
// Time limits: the overall registry timeout (`--registry-timeout`, HOIST_REGISTRY_TIMEOUT) and
// the idle timeout of one request (hidden: HOIST_REGISTRY_IDLE_TIMEOUT), with the real binary.
// ---------------------------------------------------------------------------------------------

/// Runs the hoist binary on store `root` with `envs` (the runner removes the caller's timeout
/// variables first); returns its output as text, its exit code and how long it ran.
fn hoist(root: &Path, args: &[&str], envs: &[(&str, &str)]) -> (String, Option<i32>, Duration) {
    let t0 = std::time::Instant::now();
    let o = Hoist::new(root).args(args).envs(envs).output();
    (text(&o), o.status.code(), t0.elapsed())
}

/// Files a download left behind: temporary blob files anywhere in the store.
fn temp_blobs(root: &Path) -> Vec<std::path::PathBuf> {
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if e.file_name().to_string_lossy().starts_with("blob-") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

/// Requests the proxy saw for `path_contains`.
fn seen(proxy: &Server, method: &str, path_contains: &str) -> Vec<common::proxy::Seen> {
    proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == method && s.path.contains(path_contains))
        .collect()
}

#[test]
fn a_registry_stalled_mid_blob_ends_the_pull_at_the_registry_timeout() {
    let l = lab("h/stall");
    let r = format!("{}/h/stall:v1", l.proxy.host);
    // Every attempt gets 1000 bytes of the layer, then nothing, for ever.
    l.proxy.add_rule(
        "GET",
        &format!("/blobs/{}", l.layer),
        Fault::StallAfter(1000),
        100,
    );
    let root = tempfile::tempdir().unwrap();
    // The idle timeout stays at its 60 s default: only the overall limit can end this.
    let (t, code, took) = hoist(root.path(), &["pull", "--registry-timeout", "2s", &r], &[]);
    assert_eq!(code, Some(1), "{t}");
    assert!(took < Duration::from_secs(30), "ran {took:?}: {t}");
    let want = format!("pulling {}: gave up after 2s", ImageRef::parse(&r).unwrap());
    assert!(t.contains(&want), "{t}");
    assert!(t.contains("--registry-timeout"), "{t}");
    assert!(!l.proxy.faults_hit().is_empty(), "the stall was reached");
    assert!(!blob_names(root.path()).contains(l.layer.hex()), "{t}");
    assert!(
        temp_blobs(root.path()).is_empty(),
        "{:?}",
        temp_blobs(root.path())
    );
    // Nothing was named either.
    let (t, code, _) = hoist(root.path(), &["images", "-q"], &[]);
    assert_eq!((t.trim(), code), ("", Some(0)));
}

#[test]
fn a_slow_but_progressing_download_is_not_cut_by_the_idle_timeout() {
    let l = lab("h/trickle");
    let r = format!("{}/h/trickle:v1", l.proxy.host);
    // 8 KiB every 250 ms: the layer takes well over the 1 s idle limit, no pause reaches it.
    l.proxy.add_rule(
        "GET",
        &format!("/blobs/{}", l.layer),
        Fault::Trickle(8192, Duration::from_millis(250)),
        1,
    );
    assert!(
        l.layer_bytes.len() > 5 * 8192,
        "the transfer outlasts the idle limit"
    );
    let root = tempfile::tempdir().unwrap();
    let (t, code, took) = hoist(
        root.path(),
        &["pull", &r],
        &[("HOIST_REGISTRY_IDLE_TIMEOUT", "1s")],
    );
    assert_eq!(code, Some(0), "{t}");
    assert!(took > Duration::from_secs(1), "the premise: {took:?}");
    let gets = seen(&l.proxy, "GET", &format!("/blobs/{}", l.layer));
    assert_eq!(gets.len(), 1, "one request, never cut or resumed: {gets:?}");
    assert!(
        gets[0]
            .fault
            .as_deref()
            .is_some_and(|f| f.starts_with("Trickle"))
    );
    assert!(!t.contains("retrying"), "{t}");
    let b = Store::open(root.path()).unwrap();
    assert_eq!(b.read_blob(&l.layer).unwrap(), l.layer_bytes);
}

#[test]
fn a_stall_that_recovers_is_cut_by_the_idle_timeout_and_resumed() {
    let l = lab("h/recover");
    let r = format!("{}/h/recover:v1", l.proxy.host);
    // The first attempt stalls after 10 000 bytes; the next is served.
    l.proxy.add_rule(
        "GET",
        &format!("/blobs/{}", l.layer),
        Fault::StallAfter(10_000),
        1,
    );
    let root = tempfile::tempdir().unwrap();
    let (t, code, took) = hoist(
        root.path(),
        &["pull", "--registry-timeout", "60s", &r],
        &[("HOIST_REGISTRY_IDLE_TIMEOUT", "1s")],
    );
    assert_eq!(code, Some(0), "{t}");
    assert!(took < Duration::from_secs(30), "ran {took:?}: {t}");
    assert!(t.contains("idle timeout"), "the retry says why: {t}");
    let gets = seen(&l.proxy, "GET", &format!("/blobs/{}", l.layer));
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(
        gets[1].range.as_deref(),
        Some("bytes=10000-"),
        "resumed where the stall began"
    );
    let b = Store::open(root.path()).unwrap();
    assert_eq!(b.read_blob(&l.layer).unwrap(), l.layer_bytes);
    assert!(temp_blobs(root.path()).is_empty());
}

/// A store at `root` holding `local/app:1` (one layer of `len` noise bytes).
fn local_image(root: &Path, seed: u64, len: usize) -> Digest {
    let s = Store::open(root).unwrap();
    let name = ImageRef::parse("local/app:1").unwrap().to_string();
    fixture_image(&s, &name, &[("f", noise(len, seed))])
}

#[test]
fn a_push_to_a_registry_that_never_answers_ends_at_the_registry_timeout() {
    let l = lab("h/base");
    let root = tempfile::tempdir().unwrap();
    local_image(root.path(), 21, 40_000);
    // Blob uploads are read, then never answered.
    l.proxy.add_rule("PUT", "/blobs/uploads/", Fault::Hang, 100);
    let dest = format!("{}/h/hang:1", l.proxy.host);
    // The limit from the environment this time.
    let (t, code, took) = hoist(
        root.path(),
        &["push", "local/app:1", &dest],
        &[("HOIST_REGISTRY_TIMEOUT", "2s")],
    );
    assert_eq!(code, Some(1), "{t}");
    assert!(took < Duration::from_secs(30), "ran {took:?}: {t}");
    let want = format!(
        "pushing {}: gave up after 2s",
        ImageRef::parse(&dest).unwrap()
    );
    assert!(t.contains(&want), "{t}");
    assert!(t.contains("HOIST_REGISTRY_TIMEOUT"), "{t}");
    assert!(!l.proxy.faults_hit().is_empty());
    assert!(
        seen(&l.proxy, "PUT", "/manifests/").is_empty(),
        "no manifest without its blobs"
    );
}

#[test]
fn a_slow_upload_is_not_cut_by_the_idle_timeout() {
    let l = lab("h/base2");
    let root = tempfile::tempdir().unwrap();
    let md = local_image(root.path(), 22, 60_000);
    // The proxy takes the upload 4 KiB every 150 ms: some 2 s for the layer.
    l.proxy.add_rule(
        "PUT",
        "/blobs/uploads/",
        Fault::SlowRequest(4096, Duration::from_millis(150)),
        100,
    );
    let dest = format!("{}/h/slowup:1", l.proxy.host);
    let (t, code, took) = hoist(
        root.path(),
        &["push", "local/app:1", &dest],
        &[("HOIST_REGISTRY_IDLE_TIMEOUT", "1s")],
    );
    assert_eq!(code, Some(0), "{t}");
    assert!(took > Duration::from_secs(1), "the premise: {took:?}");
    assert!(!t.contains("retrying"), "{t}");
    let puts = seen(&l.proxy, "PUT", "/blobs/uploads/");
    assert_eq!(puts.len(), 2, "config and layer, each sent once: {puts:?}");
    // What the registry has is the image.
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let pulled = client(l.cfg.path())
        .pull(&ImageRef::parse(&dest).unwrap(), &amd64(), &b)
        .unwrap();
    assert_eq!(pulled.manifest_digest, md);
}
