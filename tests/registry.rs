//! The registry client and store against real `docker-registry` servers: plain HTTP, HTTPS with
//! a generated CA and htpasswd, token auth with a test issuer, and a fault-injecting proxy.

mod common;

use base64::Engine as _;
use common::proxy::{Fault, Issuer, Server};
use common::{Auth, Hoist, Registry, TokenKeys, blob_names, docker_config, fixture_image, noise};
use hoist::oci::{Digest, Platform};
use hoist::registry::{Client, ImageRef, Progress, ProgressKind, RegistryError, RegistryOptions};
use hoist::store::Store;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn client(cfg: &Path) -> Client {
    let mut c = Client::new(RegistryOptions {
        insecure: vec![],
        docker_config_dir: Some(cfg.to_path_buf()),
    })
    .unwrap();
    c.set_retry(6, Duration::from_millis(50), Duration::from_secs(3));
    c
}

fn record(c: &mut Client) -> Arc<Mutex<Vec<Progress>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    c.set_progress(move |p: &Progress| l.lock().unwrap().push(p.clone()));
    log
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

fn assert_same_blobs(a: &Store, b: &Store, md: &Digest) {
    let (m, _) = a.load_image(md).unwrap();
    let mut all = vec![md.clone(), m.config.digest.clone()];
    all.extend(m.layers.iter().map(|l| l.digest.clone()));
    for d in all {
        assert_eq!(
            a.read_blob(&d).unwrap(),
            b.read_blob(&d).unwrap(),
            "blob {d} differs"
        );
    }
}

#[test]
fn plain_push_then_pull_is_identical_and_second_repo_mounts() {
    let reg = Registry::start(Auth::None);
    let cfg = tempfile::tempdir().unwrap();
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(
        &a,
        "local/app:1",
        &[
            ("bin/tool", noise(300_000, 1)),
            ("etc/conf", b"hello".to_vec()),
        ],
    );
    let dest = ImageRef::parse(&format!("{}/test/one:v1", reg.host)).unwrap();
    assert_eq!(client(cfg.path()).push(&a, &md, &dest).unwrap(), md);

    let b = Store::open(tb.path()).unwrap();
    let pulled = client(cfg.path()).pull(&dest, &amd64(), &b).unwrap();
    assert_eq!(pulled.manifest_digest, md);
    assert_eq!(b.get_image(&dest.to_string()).unwrap(), Some(md.clone()));
    assert_same_blobs(&a, &b, &md);
    assert_eq!(blob_names(ta.path()), blob_names(tb.path()));

    // Second repository of the same registry: blobs are mounted, not uploaded.
    let mut c = client(cfg.path());
    let log = record(&mut c);
    let dest2 = ImageRef::parse(&format!("{}/test/two:v1", reg.host)).unwrap();
    c.push(&a, &md, &dest2).unwrap();
    let mounted: Vec<Progress> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|p| matches!(&p.kind, ProgressKind::Mounted { from } if from == "test/one"))
        .cloned()
        .collect();
    assert_eq!(
        mounted.len(),
        2,
        "config and layer mounted: {:?}",
        log.lock().unwrap()
    );
    assert!(
        !log.lock()
            .unwrap()
            .iter()
            .any(|p| p.kind == ProgressKind::Pushed)
    );

    // Pushing again skips everything after HEAD.
    let mut c = client(cfg.path());
    let log = record(&mut c);
    c.push(&a, &md, &dest2).unwrap();
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|p| p.kind == ProgressKind::Exists)
            .count(),
        2
    );

    // A missing tag is a clear 404.
    let missing = ImageRef::parse(&format!("{}/test/one:nope", reg.host)).unwrap();
    let e = client(cfg.path()).pull(&missing, &amd64(), &b).unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("test/one:nope"), "{e}");
}

#[test]
fn chunked_upload_of_a_bigger_layer() {
    let reg = Registry::start(Auth::None);
    let cfg = tempfile::tempdir().unwrap();
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/big:1", &[("big", noise(3 << 20, 7))]);
    let mut c = client(cfg.path());
    c.set_upload_sizes(1 << 20, 512 << 10);
    let dest = ImageRef::parse(&format!("{}/test/chunked:v1", reg.host)).unwrap();
    c.push(&a, &md, &dest).unwrap();
    let b = Store::open(tb.path()).unwrap();
    client(cfg.path()).pull(&dest, &amd64(), &b).unwrap();
    assert_same_blobs(&a, &b, &md);
}

#[test]
fn skopeo_reads_what_hoist_pushed_and_hoist_pulls_what_skopeo_pushed() {
    common::require("skopeo", "skopeo");
    let reg = Registry::start(Auth::None);
    let cfg = tempfile::tempdir().unwrap();
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/sk:1", &[("f", noise(50_000, 3))]);
    let dest = ImageRef::parse(&format!("{}/test/sk:v1", reg.host)).unwrap();
    client(cfg.path()).push(&a, &md, &dest).unwrap();

    let raw = common::run(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/test/sk:v1", reg.host)),
    );
    assert_eq!(raw, a.read_blob(&md).unwrap());
    let layout = tempfile::tempdir().unwrap();
    let oci = format!("oci:{}:x", layout.path().display());
    common::run(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{}/test/sk:v1", reg.host))
            .arg(&oci),
    );
    // skopeo pushes a Docker schema 2 conversion; hoist pulls it.
    common::run(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--format", "v2s2"])
            .arg(&oci)
            .arg(format!("docker://{}/skopeo/img:v2", reg.host)),
    );
    let want = String::from_utf8(common::run(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{}/skopeo/img:v2", reg.host)),
    ))
    .unwrap();
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let src = ImageRef::parse(&format!("{}/skopeo/img:v2", reg.host)).unwrap();
    let pulled = client(cfg.path()).pull(&src, &amd64(), &b).unwrap();
    assert_eq!(pulled.manifest_digest.to_string(), want.trim());
    assert_eq!(
        pulled.manifest.media_type.as_deref(),
        Some(hoist::oci::media::DOCKER_MANIFEST)
    );
    assert_eq!(
        pulled.manifest.layers[0].digest,
        a.load_image(&md).unwrap().0.layers[0].digest
    );
}

#[test]
fn https_with_test_ca_and_htpasswd() {
    let reg = Registry::start(Auth::TlsBasic {
        user: "alice".into(),
        password: "s3cret-pw".into(),
    });
    let cfg = tempfile::tempdir().unwrap();
    docker_config(
        cfg.path(),
        &reg.host,
        serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pw")}),
    );
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/tls:1", &[("f", noise(20_000, 5))]);
    let dest = ImageRef::parse(&format!("{}/secure/app:v1", reg.host)).unwrap();
    let mut c = client(cfg.path());
    c.set_certs_dir(&reg.certs_dir());
    c.push(&a, &md, &dest).unwrap();
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    c.pull(&dest, &amd64(), &b).unwrap();
    assert_same_blobs(&a, &b, &md);

    // No credentials: a clear 401 naming the registry and `hoist login`.
    let empty = tempfile::tempdir().unwrap();
    let mut c = client(empty.path());
    c.set_certs_dir(&reg.certs_dir());
    let e = c
        .pull(
            &dest,
            &amd64(),
            &Store::open(tempfile::tempdir().unwrap().path()).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("hoist login {}", reg.host)),
        "{e}"
    );

    // Without the CA the server is not trusted (and plain HTTP is not what it speaks).
    let e = client(cfg.path())
        .pull(
            &dest,
            &amd64(),
            &Store::open(tempfile::tempdir().unwrap().path()).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::Connection { .. }), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    // --insecure-registry HOST:PORT: HTTPS without verification, as Docker does.
    let mut c = Client::new(RegistryOptions {
        insecure: vec![reg.host.clone()],
        docker_config_dir: Some(cfg.path().to_path_buf()),
    })
    .unwrap();
    c.set_retry(2, Duration::from_millis(50), Duration::from_secs(1));
    let tc = tempfile::tempdir().unwrap();
    let pulled = c
        .pull(&dest, &amd64(), &Store::open(tc.path()).unwrap())
        .unwrap();
    assert_eq!(pulled.manifest_digest, md);

    // CLI: login writes docker's config.json (CA from SSL_CERT_FILE), pull uses it, logout removes it.
    let dc = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let hoist = |args: &[&str], stdin: &str| {
        let mut ch = Hoist::new(root.path())
            .args(args)
            .env("DOCKER_CONFIG", dc.path())
            .env("SSL_CERT_FILE", reg.ca.as_ref().unwrap())
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        ch.stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        ch.wait_with_output().unwrap()
    };
    let bad = hoist(
        &["login", "-u", "alice", "--password-stdin", &reg.host],
        "wrong\n",
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("hoist login") && !err.contains("wrong"),
        "{err}"
    );
    let ok = hoist(
        &["login", "-u", "alice", "--password-stdin", &reg.host],
        "s3cret-pw\n",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dc.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(
        written["auths"][&reg.host]["auth"],
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret-pw")
    );
    let pull = hoist(&["pull", "-q", &dest.to_string()], "");
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&pull.stdout).trim(), md.to_string());
    assert!(hoist(&["logout", &reg.host], "").status.success());
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dc.path().join("config.json")).unwrap()).unwrap();
    assert!(after["auths"].get(&reg.host).is_none());
}

fn token_setup(dir: &Path) -> Issuer {
    Issuer {
        keys: TokenKeys::generate(dir),
        user: "bob".into(),
        password: "tok-pass".into(),
        refresh_token: "refresh-123".into(),
        anonymous_pull: true,
    }
}

#[test]
fn token_auth_with_credentials_refresh_token_and_anonymous_pull() {
    let keys_dir = tempfile::tempdir().unwrap();
    let issuer = token_setup(keys_dir.path());
    // The issuer lives on the registry's origin, in front of it, as on Harbor or GHCR.
    let front = Server::start(None, Some(issuer.clone()));
    let reg = Registry::start(Auth::Token {
        realm: format!("http://{}/token", front.host),
        issuer: issuer.keys.clone(),
    });
    front.set_upstream(&reg.host);

    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/tok:1", &[("f", noise(40_000, 9))]);
    let dest = ImageRef::parse(&format!("{}/team/app:v1", front.host)).unwrap();

    // Anonymous: push is refused with a clear message.
    let anon = tempfile::tempdir().unwrap();
    let e = client(anon.path()).push(&a, &md, &dest).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("hoist login"), "{e}");

    // Basic credentials exchanged for a token (GET with basic auth).
    let cfg = tempfile::tempdir().unwrap();
    docker_config(
        cfg.path(),
        &front.host,
        serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode("bob:tok-pass")}),
    );
    client(cfg.path()).push(&a, &md, &dest).unwrap();
    let token_gets: Vec<_> = front
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/token") && s.method == "GET")
        .collect();
    assert!(token_gets.iter().any(|s| {
        s.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))
    }));
    assert!(
        token_gets.iter().any(|s| s.path.contains("pull%2Cpush")),
        "{token_gets:?}"
    );
    assert!(front.seen().iter().any(|s| {
        s.path.starts_with("/v2/team/app/")
            && s.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer "))
    }));

    // Refresh token: OAuth2 POST form; push to a second repo mounts with pull scope on the source.
    let rcfg = tempfile::tempdir().unwrap();
    docker_config(
        rcfg.path(),
        &front.host,
        serde_json::json!({"identitytoken": "refresh-123"}),
    );
    let mut c = client(rcfg.path());
    let log = record(&mut c);
    let dest2 = ImageRef::parse(&format!("{}/team/other:v1", front.host)).unwrap();
    c.push(&a, &md, &dest2).unwrap();
    assert!(
        front
            .seen()
            .iter()
            .any(|s| s.path.starts_with("/token") && s.method == "POST")
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|p| matches!(&p.kind, ProgressKind::Mounted { from } if from == "team/app")),
        "{:?}",
        log.lock().unwrap()
    );

    // Anonymous pull works with a pull-only token.
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    client(anon.path()).pull(&dest, &amd64(), &b).unwrap();
    assert_same_blobs(&a, &b, &md);
}

#[test]
fn token_realm_on_another_port_gets_no_credentials() {
    let keys_dir = tempfile::tempdir().unwrap();
    let issuer = token_setup(keys_dir.path());
    let foreign = Server::start(None, Some(issuer.clone()));
    let reg = Registry::start(Auth::Token {
        realm: format!("http://{}/token", foreign.host),
        issuer: issuer.keys.clone(),
    });
    let cfg = tempfile::tempdir().unwrap();
    docker_config(
        cfg.path(),
        &reg.host,
        serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode("bob:tok-pass")}),
    );
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/x:1", &[("f", b"x".to_vec())]);
    let dest = ImageRef::parse(&format!("{}/team/app:v1", reg.host)).unwrap();
    let e = client(cfg.path()).push(&a, &md, &dest).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(!e.to_string().contains("tok-pass"));
    let seen = foreign.seen();
    assert!(!seen.is_empty(), "the realm was asked for a token");
    assert!(
        seen.iter().all(|s| s.authorization.is_none()),
        "credentials leaked to a foreign realm: {seen:?}"
    );
}

fn http_date_in(secs: u64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + secs;
    let days = (t / 86_400) as i64;
    let (h, m, s) = ((t % 86_400) / 3600, (t % 3600) / 60, t % 60);
    // civil from days (Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days.rem_euclid(7)) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[test]
fn faults_are_survived_by_retries_and_resume() {
    let reg = Registry::start(Auth::None);
    let proxy = Server::start(Some(reg.host.clone()), None);
    let cfg = tempfile::tempdir().unwrap();
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/f:1", &[("f", noise(600_000, 11))]);
    let layer = a.load_image(&md).unwrap().0.layers[0].digest.clone();
    let dest = ImageRef::parse(&format!("{}/test/faulty:v1", proxy.host)).unwrap();

    proxy.add_rule("HEAD", "/blobs/", Fault::Status(503, None), 1);
    proxy.add_rule(
        "POST",
        "/blobs/uploads/",
        Fault::Status(429, Some("1".into())),
        1,
    );
    proxy.add_rule("PUT", "/manifests/", Fault::Status(502, None), 1);
    let start = Instant::now();
    client(cfg.path()).push(&a, &md, &dest).unwrap();

    proxy.add_rule(
        "GET",
        "/manifests/v1",
        Fault::Status(429, Some(http_date_in(2))),
        1,
    );
    proxy.add_rule(
        "GET",
        &format!("/blobs/{layer}"),
        Fault::DropAfter(100_000),
        2,
    );
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    client(cfg.path()).pull(&dest, &amd64(), &b).unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured"
    );
    assert_same_blobs(&a, &b, &md);
    assert_eq!(proxy.faults_hit().len(), 6, "{:?}", proxy.faults_hit());
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.path.contains(&layer.to_string())
                && s.range
                    .as_deref()
                    .is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-")),
        "the dropped download was resumed with Range"
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let reg = Registry::start(Auth::None);
    let proxy = Server::start(Some(reg.host.clone()), None);
    let cfg = tempfile::tempdir().unwrap();
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/c:1", &[("f", noise(100_000, 13))]);
    let layer = a.load_image(&md).unwrap().0.layers[0].digest.clone();
    let direct = ImageRef::parse(&format!("{}/test/corrupt:v1", reg.host)).unwrap();
    client(cfg.path()).push(&a, &md, &direct).unwrap();

    proxy.add_rule("GET", &format!("/blobs/{layer}"), Fault::Corrupt, 100);
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let via = ImageRef::parse(&format!("{}/test/corrupt:v1", proxy.host)).unwrap();
    let e = client(cfg.path()).pull(&via, &amd64(), &b).unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&layer.to_string()), "{e}");
    assert!(!b.has_blob(&layer), "a corrupt blob must not be stored");
    assert_eq!(b.get_image(&via.to_string()).unwrap(), None);
    assert!(!blob_names(tb.path()).contains(layer.hex()));
}

/// Peak RSS of a child, polled from /proc (VmHWM only grows).
fn run_measuring_rss(cmd: &mut Command) -> (std::process::ExitStatus, u64, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak_kb = peak_kb.max(
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            );
        }
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st, peak_kb * 1024, err);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 1 GiB layer through `hoist push` and `hoist pull` with peak RSS under 100 MiB.
/// About 50 s on a busy 2-core box (sha2 is built optimized in the dev profile); it needs
/// about 3 GiB of free space in the temp dir.
#[test]
fn one_gib_layer_push_and_pull_in_bounded_memory() {
    let reg = Registry::start(Auth::None);
    let (ta, tb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Store::open(ta.path()).unwrap();
    // Opaque 1 GiB blob (registries do not look inside layers).
    let mut w = a.blob_writer().unwrap();
    let chunk = noise(1 << 20, 17);
    use std::io::Write;
    for i in 0..1024u32 {
        let mut c = chunk.clone();
        c[..4].copy_from_slice(&i.to_le_bytes());
        w.write_all(&c).unwrap();
    }
    let (ld, lsize) = w.commit(None).unwrap();
    let cfg = serde_json::to_vec(&serde_json::json!({"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[ld.to_string()]}})).unwrap();
    let cd = a.put_blob(&cfg).unwrap();
    let m = hoist::oci::Manifest {
        schema_version: 2,
        media_type: Some(hoist::oci::media::OCI_MANIFEST.into()),
        config: hoist::oci::Descriptor::new(hoist::oci::media::OCI_CONFIG, cd, cfg.len() as u64),
        layers: vec![hoist::oci::Descriptor::new(
            hoist::oci::media::OCI_LAYER,
            ld.clone(),
            lsize,
        )],
        annotations: None,
    };
    let md = a.put_blob(&serde_json::to_vec(&m).unwrap()).unwrap();
    let name = format!("{}/test/huge:v1", reg.host);
    a.set_image(&ImageRef::parse(&name).unwrap().to_string(), &md)
        .unwrap();
    let dc = tempfile::tempdir().unwrap();
    let (st, rss, err) = run_measuring_rss(
        &mut Hoist::new(ta.path())
            .args(["push", &name])
            .env("DOCKER_CONFIG", dc.path())
            .command(),
    );
    assert!(st.success(), "{err}");
    assert!(rss < 100 << 20, "push peak RSS {} MiB", rss >> 20);
    let (st, rss, err) = run_measuring_rss(
        &mut Hoist::new(tb.path())
            .args(["pull", &name])
            .env("DOCKER_CONFIG", dc.path())
            .command(),
    );
    assert!(st.success(), "{err}");
    assert!(rss < 100 << 20, "pull peak RSS {} MiB", rss >> 20);
    let b = Store::open(tb.path()).unwrap();
    assert_eq!(b.blob_size(&ld).unwrap(), lsize);
    assert_eq!(
        b.get_image(&ImageRef::parse(&name).unwrap().to_string())
            .unwrap(),
        Some(md)
    );
}

#[test]
fn hostile_manifests_are_refused() {
    let proxy = Server::start(None, None);
    let cfg = tempfile::tempdir().unwrap();
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let d = Digest::of(b"x");
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": hoist::oci::media::OCI_MANIFEST,
        "config": {"mediaType": hoist::oci::media::OCI_CONFIG, "digest": d.to_string(), "size": 1},
        "layers": []
    });
    let both = serde_json::json!({
        "schemaVersion": 2, "mediaType": hoist::oci::media::OCI_INDEX, "manifests": [], "layers": [],
        "config": {"mediaType": hoist::oci::media::OCI_CONFIG, "digest": d.to_string(), "size": 1}
    });
    let mut big = serde_json::to_vec(&manifest).unwrap();
    big.truncate(big.len() - 1);
    big.extend(format!(",\"annotations\":{{\"pad\":\"{}\"}}}}", "a".repeat(5 << 20)).into_bytes());
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "confused",
            hoist::oci::media::OCI_INDEX.into(),
            serde_json::to_vec(&manifest).unwrap(),
            "does not match Content-Type",
        ),
        (
            "both",
            hoist::oci::media::OCI_INDEX.into(),
            serde_json::to_vec(&both).unwrap(),
            "both `manifests` and `layers`",
        ),
        ("big", hoist::oci::media::OCI_MANIFEST.into(), big, "limit"),
        (
            "schema1",
            "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec(),
            "schema 1",
        ),
    ];
    for (tag, ct, body, want) in cases {
        proxy.add_rule(
            "GET",
            &format!("/manifests/{tag}"),
            Fault::Serve(ct, body),
            1,
        );
        let r = ImageRef::parse(&format!("{}/evil/img:{tag}", proxy.host)).unwrap();
        let e = client(cfg.path()).pull(&r, &amd64(), &b).unwrap_err();
        assert!(e.to_string().contains(want), "{tag}: {e}");
    }
    // A manifest fetched by digest must hash to that digest.
    let body = serde_json::to_vec(&manifest).unwrap();
    proxy.add_rule(
        "GET",
        "/manifests/sha256:",
        Fault::Serve(hoist::oci::media::OCI_MANIFEST.into(), body),
        1,
    );
    let r = ImageRef::parse(&format!("{}/evil/img@{d}", proxy.host)).unwrap();
    let e = client(cfg.path()).pull(&r, &amd64(), &b).unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(b.list_images().unwrap().is_empty());
    assert!(
        blob_names(tb.path()).is_empty(),
        "nothing stored from hostile manifests"
    );
}

#[test]
fn credential_helper_from_config_json_is_used() {
    let reg = Registry::start(Auth::TlsBasic {
        user: "carol".into(),
        password: "helper-pw".into(),
    });
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/h:1", &[("f", b"helper".to_vec())]);
    let dest = ImageRef::parse(&format!("{}/helped/app:v1", reg.host)).unwrap();
    // Push needs the password; the client only gets it from the helper.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-hoisttest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread s\nif [ \"$1\" = get ] && [ \"$s\" = {host} ]; then echo '{{\"ServerURL\":\"{host}\",\"Username\":\"carol\",\"Secret\":\"helper-pw\"}}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
            host = reg.host
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dc = tempfile::tempdir().unwrap();
    std::fs::write(
        dc.path().join("config.json"),
        serde_json::to_vec(&serde_json::json!({"credHelpers": {&reg.host: "hoisttest"}})).unwrap(),
    )
    .unwrap();
    let root = ta.path();
    a.set_image(&dest.to_string(), &md).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Hoist::new(root)
        .args(["push", &dest.to_string()])
        .env("PATH", path)
        .env("DOCKER_CONFIG", dc.path())
        .env("SSL_CERT_FILE", reg.ca.as_ref().unwrap())
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("helper-pw"));
}

#[test]
fn authorization_is_not_forwarded_on_cross_origin_redirects() {
    let keys_dir = tempfile::tempdir().unwrap();
    let issuer = token_setup(keys_dir.path());
    let front = Server::start(None, Some(issuer.clone()));
    let reg = Registry::start(Auth::Token {
        realm: format!("http://{}/token", front.host),
        issuer: issuer.keys.clone(),
    });
    front.set_upstream(&reg.host);
    let cfg = tempfile::tempdir().unwrap();
    docker_config(
        cfg.path(),
        &front.host,
        serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode("bob:tok-pass")}),
    );
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/r:1", &[("f", noise(10_000, 21))]);
    let layer = a.load_image(&md).unwrap().0.layers[0].digest.clone();
    let dest = ImageRef::parse(&format!("{}/team/redir:v1", front.host)).unwrap();
    client(cfg.path()).push(&a, &md, &dest).unwrap();

    // The blob is served by "object storage" on another origin, as registries do with S3.
    let cdn = Server::start(None, None);
    cdn.add_rule(
        "GET",
        "/blob",
        Fault::Serve(
            "application/octet-stream".into(),
            a.read_blob(&layer).unwrap(),
        ),
        1,
    );
    front.add_rule(
        "GET",
        &format!("/blobs/{layer}"),
        Fault::Redirect(format!("http://{}/blob?X-Amz-Signature=abc", cdn.host)),
        1,
    );
    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    client(cfg.path()).pull(&dest, &amd64(), &b).unwrap();
    assert!(b.has_blob(&layer));
    let seen = cdn.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].authorization.is_none(),
        "Authorization leaked across origins: {seen:?}"
    );
    assert!(
        front
            .seen()
            .iter()
            .any(|s| s.path.contains(&layer.to_string()) && s.authorization.is_some())
    );
}

#[test]
fn concurrent_pulls_into_one_store_download_each_blob_once() {
    let reg = Registry::start(Auth::None);
    let proxy = Server::start(Some(reg.host.clone()), None);
    let cfg = tempfile::tempdir().unwrap();
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(&a, "local/cc:1", &[("f", noise(2 << 20, 31))]);
    let layer = a.load_image(&md).unwrap().0.layers[0].digest.clone();
    let dest = ImageRef::parse(&format!("{}/test/cc:v1", proxy.host)).unwrap();
    client(cfg.path()).push(&a, &md, &dest).unwrap();

    let shared = tempfile::tempdir().unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (root, dest, cfg) = (
                shared.path().to_path_buf(),
                dest.clone(),
                cfg.path().to_path_buf(),
            );
            std::thread::spawn(move || {
                // Each thread opens its own Store handle, as separate processes would.
                let s = Store::open(&root).unwrap();
                client(&cfg)
                    .pull(&dest, &amd64(), &s)
                    .map(|p| p.manifest_digest)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), md);
    }
    let gets = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.ends_with(&layer.to_string()))
        .count();
    assert_eq!(gets, 1, "the layer was downloaded once");
    let s = Store::open(shared.path()).unwrap();
    let r = s.fsck(false).unwrap();
    assert!(r.issues.is_empty(), "{:?}", r.issues);
    assert_same_blobs(&a, &s, &md);
}

#[test]
fn kill_9_during_pull_leaves_a_store_that_fsck_passes() {
    let reg = Registry::start(Auth::None);
    let cfg = tempfile::tempdir().unwrap();
    let ta = tempfile::tempdir().unwrap();
    let a = Store::open(ta.path()).unwrap();
    let md = fixture_image(
        &a,
        "local/k:1",
        &[("a", noise(12 << 20, 41)), ("b", noise(4 << 20, 42))],
    );
    let name = format!("{}/test/kill:v1", reg.host);
    client(cfg.path())
        .push(&a, &md, &ImageRef::parse(&name).unwrap())
        .unwrap();

    let root = tempfile::tempdir().unwrap();
    let hoist = |args: &[&str]| {
        let mut c = Hoist::new(root.path())
            .args(args)
            .env("DOCKER_CONFIG", cfg.path())
            .command();
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    for delay_ms in [20u64, 60, 120, 250, 500] {
        let mut child = hoist(&["pull", &name]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(
            hoist(&["fsck"]).status().unwrap().success(),
            "fsck after kill at {delay_ms} ms"
        );
        let s = Store::open(root.path()).unwrap();
        if let Some(d) = s
            .get_image(&ImageRef::parse(&name).unwrap().to_string())
            .unwrap()
        {
            assert_eq!(d, md, "a named image is always complete");
            s.load_image(&d).unwrap();
        }
    }
    assert!(hoist(&["pull", &name]).status().unwrap().success());
    let s = Store::open(root.path()).unwrap();
    assert_same_blobs(&a, &s, &md);
    // Only this handle's own session is left under tmp/ (stale ones were cleaned on open).
    let tmp: Vec<_> = std::fs::read_dir(root.path().join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        tmp.len(),
        2,
        "one session dir and its lock: {:?}",
        tmp.iter().map(|e| e.file_name()).collect::<Vec<_>>()
    );
}

#[test]
fn streamed_upload_reads_back_equal_and_a_wrong_digest_is_refused() {
    let reg = Registry::start(Auth::None);
    let cfg = tempfile::tempdir().unwrap();
    let c = client(cfg.path());
    let dest = ImageRef::parse(&format!("{}/test/streamed:v1", reg.host)).unwrap();
    let data = noise(3 * 700_000 + 123, 21);
    let digest = Digest::of(&data);

    let mut up = c.begin_upload(&dest).unwrap();
    // A body that arrives in parts, as a layer being written does.
    use std::io::Read;
    let body = std::io::Cursor::new(data[..700_000].to_vec())
        .chain(std::io::Cursor::new(data[700_000..1_400_000].to_vec()))
        .chain(std::io::Cursor::new(data[1_400_000..].to_vec()));
    up.write_stream(body).unwrap();
    assert_eq!(up.offset(), data.len() as u64);
    up.finish(&digest).unwrap();

    let tb = tempfile::tempdir().unwrap();
    let b = Store::open(tb.path()).unwrap();
    let desc = hoist::oci::Descriptor::new(
        hoist::oci::media::OCI_LAYER_GZIP,
        digest.clone(),
        data.len() as u64,
    );
    c.fetch_blob(&dest, &desc, &b).unwrap();
    assert_eq!(b.read_blob(&digest).unwrap(), data);

    // Bytes that do not hash to the digest given at the end are refused, and not stored.
    let other = noise(500_000, 30);
    let claimed = Digest::of(&noise(500_000, 40));
    let mut up = c.begin_upload(&dest).unwrap();
    up.write_stream(std::io::Cursor::new(other.clone()))
        .unwrap();
    let e = up.finish(&claimed).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, RegistryError::Status { status: 400, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("DIGEST_INVALID") || msg.contains("digest"),
        "{msg}"
    );
    assert!(
        msg.contains("test/streamed"),
        "names the destination: {msg}"
    );
    let bad = hoist::oci::Descriptor::new(hoist::oci::media::OCI_LAYER_GZIP, claimed, 500_000);
    let e = c.fetch_blob(&dest, &bad, &b).unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");

    // An aborted session leaves nothing behind either.
    let mut up = c.begin_upload(&dest).unwrap();
    up.write_stream(std::io::Cursor::new(other.clone()))
        .unwrap();
    up.abort();
    let desc = hoist::oci::Descriptor::new(
        hoist::oci::media::OCI_LAYER_GZIP,
        Digest::of(&other),
        other.len() as u64,
    );
    let e = c.fetch_blob(&dest, &desc, &b).unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
}
