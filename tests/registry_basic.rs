//! Registry client against the lab registry at localhost:5000 (skipped with a message when it
//! is not running) and against a tiny in-process HTTP server that serves a wrong blob.

#![allow(clippy::print_stderr)]

use hoist::oci::{Digest, Platform};
use hoist::registry::{Client, ImageRef, RegistryError, RegistryOptions};
use hoist::store::Store;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

fn lab_up() -> bool {
    TcpStream::connect_timeout(
        &"127.0.0.1:5000".parse().unwrap(),
        std::time::Duration::from_secs(1),
    )
    .is_ok()
}

fn client() -> Client {
    let dir = tempfile::tempdir().unwrap().keep();
    Client::new(RegistryOptions {
        insecure: vec![],
        docker_config_dir: Some(dir),
    })
    .unwrap()
}

#[test]
fn pull_push_pull_round_trip_against_lab_registry() {
    if !lab_up() {
        eprintln!("SKIPPED: no registry at localhost:5000");
        return;
    }
    let c = client();
    let src: ImageRef = "localhost:5000/busybox:latest".parse().unwrap();
    let plat = Platform::host();
    let d1 = tempfile::tempdir().unwrap();
    let s1 = Store::open(d1.path()).unwrap();
    let pulled = c.pull(&src, &plat, &s1).unwrap();
    assert_eq!(
        s1.get_image("localhost:5000/busybox:latest").unwrap(),
        Some(pulled.manifest_digest.clone())
    );
    assert!(!pulled.manifest.layers.is_empty());
    for l in &pulled.manifest.layers {
        assert_eq!(s1.read_blob(&l.digest).unwrap().len() as u64, l.size);
    }
    assert_eq!(c.resolve(&src, &plat).unwrap(), pulled.manifest_digest);

    let tag = format!("t{}", std::process::id());
    let dest: ImageRef = format!("localhost:5000/hoist-test/pushed:{tag}")
        .parse()
        .unwrap();
    let pushed = c.push(&s1, &pulled.manifest_digest, &dest).unwrap();
    assert_eq!(pushed, pulled.manifest_digest);
    // Pushing again skips every blob (HEAD) and still answers the same digest.
    assert_eq!(c.push(&s1, &pulled.manifest_digest, &dest).unwrap(), pushed);

    let d2 = tempfile::tempdir().unwrap();
    let s2 = Store::open(d2.path()).unwrap();
    let back = c.pull(&dest, &plat, &s2).unwrap();
    assert_eq!(back.manifest_digest, pulled.manifest_digest);
    assert_eq!(
        s2.read_blob(&back.manifest_digest).unwrap(),
        s1.read_blob(&pulled.manifest_digest).unwrap()
    );
    assert_eq!(back.config, pulled.config);

    // By digest too.
    let by_digest: ImageRef = format!("localhost:5000/hoist-test/pushed@{pushed}")
        .parse()
        .unwrap();
    assert_eq!(c.get_manifest(&by_digest).unwrap().2, pushed);
}

#[test]
fn missing_image_names_it() {
    if !lab_up() {
        eprintln!("SKIPPED: no registry at localhost:5000");
        return;
    }
    let c = client();
    let r: ImageRef = "localhost:5000/nope/never".parse().unwrap();
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let e = c.pull(&r, &Platform::host(), &s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "manifest unknown: localhost:5000/nope/never:latest not found"
    );
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// (status line, extra headers, body)
type Resp = (String, Vec<(String, String)>, Vec<u8>);
type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// A tiny HTTP/1.1 server on a loopback port; every request is logged in the returned list.
fn serve_fn(handler: Handler) -> (u16, Arc<Mutex<Vec<Req>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let handler = handler.clone();
            let log = log2.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = h.trim_end().split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                            headers.push((k.to_string(), v.trim().to_string()));
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let req = Req {
                        method: method.clone(),
                        path,
                        headers,
                    };
                    log.lock().unwrap().push(req.clone());
                    let (status, mut extra, mut data) = handler(&req);
                    // `X-Truncate-At: N`: send the full Content-Length, then only N bytes, then hang up.
                    let cut = extra.iter().position(|(k, _)| k == "X-Truncate-At");
                    let cut = cut.map(|i| extra.remove(i).1.parse::<usize>().unwrap());
                    let full_len = data.len();
                    if let Some(n) = cut {
                        data.truncate(n);
                    }
                    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {full_len}\r\n");
                    for (k, v) in extra {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if conn.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    if method != "HEAD" && conn.write_all(&data).is_err() {
                        return;
                    }
                    if cut.is_some() {
                        return;
                    }
                }
            });
        }
    });
    (port, log)
}

/// Serves fixed `routes` (path → (content type, body)); anything else is 404.
fn serve(routes: Vec<(String, String, Vec<u8>)>) -> u16 {
    serve_fn(Arc::new(move |req: &Req| {
        match routes.iter().find(|(p, _, _)| *p == req.path) {
            Some((_, ct, b)) => (
                "200 OK".into(),
                vec![("Content-Type".into(), ct.clone())],
                b.clone(),
            ),
            None => ("404 Not Found".into(), vec![], b"{}".to_vec()),
        }
    }))
    .0
}

/// A manifest, config and one layer for the fake registries.
fn fake_image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let layer = b"the real layer bytes".to_vec();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        Digest::of(&config),
        config.len(),
        Digest::of(&layer),
        layer.len()
    );
    (manifest.into_bytes(), config, layer)
}

#[test]
fn bearer_auth_token_cache_redirects_without_credentials_and_retries() {
    let (manifest, config, layer) = fake_image();
    let (cd, ld) = (Digest::of(&config), Digest::of(&layer));
    // The CDN the layer redirects to: must never see the registry's Authorization.
    let layer2 = layer.clone();
    let (cdn_port, cdn_log) = serve_fn(Arc::new(move |_req: &Req| {
        ("200 OK".into(), vec![], layer2.clone())
    }));
    let fails = Arc::new(Mutex::new(0));
    let fails2 = fails.clone();
    let reg_port = Arc::new(Mutex::new(0u16));
    let reg_port2 = reg_port.clone();
    let (port, log) = serve_fn(Arc::new(move |req: &Req| {
        let port = *reg_port2.lock().unwrap();
        if req.path.starts_with("/token") {
            // user "me", password "pw"
            if req.header("Authorization") != Some("Basic bWU6cHc=") {
                return ("401 Unauthorized".into(), vec![], b"{}".to_vec());
            }
            assert!(
                req.path.contains("scope=repository%3Aprivate%2Fimg%3Apull"),
                "{}",
                req.path
            );
            return (
                "200 OK".into(),
                vec![],
                br#"{"token":"T0K","expires_in":300}"#.to_vec(),
            );
        }
        if req.header("Authorization") != Some("Bearer T0K") {
            let ch = format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#);
            return (
                "401 Unauthorized".into(),
                vec![("WWW-Authenticate".into(), ch)],
                b"{}".to_vec(),
            );
        }
        if req.path == format!("/v2/private/img/blobs/{cd}") {
            // Flaky: two 503s, then a 429 with Retry-After, then the config.
            let mut f = fails2.lock().unwrap();
            *f += 1;
            return match *f {
                1 | 2 => ("503 Service Unavailable".into(), vec![], b"busy".to_vec()),
                3 => (
                    "429 Too Many Requests".into(),
                    vec![("Retry-After".into(), "1".into())],
                    vec![],
                ),
                _ => ("200 OK".into(), vec![], config.clone()),
            };
        }
        if req.path == format!("/v2/private/img/blobs/{ld}") {
            let loc = format!("http://127.0.0.1:{cdn_port}/signed/layer?sig=x");
            return (
                "307 Temporary Redirect".into(),
                vec![("Location".into(), loc)],
                vec![],
            );
        }
        if req.path == "/v2/private/img/manifests/latest" {
            let ct = "application/vnd.oci.image.manifest.v1+json".to_string();
            return (
                "200 OK".into(),
                vec![("Content-Type".into(), ct)],
                manifest.clone(),
            );
        }
        ("404 Not Found".into(), vec![], b"{}".to_vec())
    }));
    *reg_port.lock().unwrap() = port;

    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        format!(r#"{{"auths":{{"127.0.0.1:{port}":{{"auth":"bWU6cHc="}}}}}}"#),
    )
    .unwrap();
    let c = Client::new(RegistryOptions {
        insecure: vec![],
        docker_config_dir: Some(cfg.path().to_path_buf()),
    })
    .unwrap();
    let r: ImageRef = format!("127.0.0.1:{port}/private/img").parse().unwrap();
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let p = c
        .pull(&r, &Platform::parse("linux/amd64").unwrap(), &s)
        .unwrap();
    assert_eq!(s.read_blob(&Digest::of(&layer)).unwrap(), layer);
    assert_eq!(
        s.get_image(&r.to_string()).unwrap(),
        Some(p.manifest_digest)
    );

    let log = log.lock().unwrap();
    let tokens = log.iter().filter(|q| q.path.starts_with("/token")).count();
    assert_eq!(tokens, 1, "the token is fetched once and cached: {log:#?}");
    assert_eq!(*fails.lock().unwrap(), 4, "two 503s and a 429 were retried");
    let cdn = cdn_log.lock().unwrap();
    assert_eq!(cdn.len(), 1);
    assert_eq!(
        cdn[0].header("Authorization"),
        None,
        "credentials leaked on a redirect to another host"
    );
}

#[test]
fn wrong_credentials_name_registry_repository_and_scope_without_the_secret() {
    let reg_port = Arc::new(Mutex::new(0u16));
    let reg_port2 = reg_port.clone();
    let (port, _log) = serve_fn(Arc::new(move |req: &Req| {
        let port = *reg_port2.lock().unwrap();
        if req.path.starts_with("/token") {
            return (
                "401 Unauthorized".into(),
                vec![],
                br#"{"details":"bad credentials"}"#.to_vec(),
            );
        }
        let ch = format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#);
        (
            "401 Unauthorized".into(),
            vec![("WWW-Authenticate".into(), ch)],
            b"{}".to_vec(),
        )
    }));
    *reg_port.lock().unwrap() = port;
    let cfg = tempfile::tempdir().unwrap();
    // user "me", password "s3cr3t-value"
    std::fs::write(
        cfg.path().join("config.json"),
        format!(r#"{{"auths":{{"127.0.0.1:{port}":{{"auth":"bWU6czNjcjN0LXZhbHVl"}}}}}}"#),
    )
    .unwrap();
    let c = Client::new(RegistryOptions {
        insecure: vec![],
        docker_config_dir: Some(cfg.path().to_path_buf()),
    })
    .unwrap();
    let r: ImageRef = format!("127.0.0.1:{port}/team/app:v1").parse().unwrap();
    let e = c.get_manifest(&r).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "401 from registry 127.0.0.1:{port} for repository team/app (scope repository:team/app:pull): {{\"details\":\"bad credentials\"}}; run `hoist login 127.0.0.1:{port}` with an account that has this access"
        )
    );
    assert!(!e.contains("s3cr3t") && !e.contains("bWU6"));
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_nothing_is_stored() {
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let cd = Digest::of(&config);
    let good_layer = b"the real layer bytes".to_vec();
    let ld = Digest::of(&good_layer);
    let evil = b"other layer bytes!!!".to_vec(); // same length, different bytes
    assert_eq!(evil.len(), good_layer.len());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        good_layer.len()
    );
    let port = serve(vec![
        (
            "/v2/evil/img/manifests/latest".into(),
            "application/vnd.oci.image.manifest.v1+json".into(),
            manifest.into_bytes(),
        ),
        (
            format!("/v2/evil/img/blobs/{cd}"),
            "application/octet-stream".into(),
            config,
        ),
        (
            format!("/v2/evil/img/blobs/{ld}"),
            "application/octet-stream".into(),
            evil,
        ),
    ]);
    let c = client();
    let r: ImageRef = format!("127.0.0.1:{port}/evil/img").parse().unwrap();
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let e = c
        .pull(&r, &Platform::parse("linux/amd64").unwrap(), &s)
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&format!("expected {ld}")), "{e}");
    assert!(!s.has_blob(&ld));
    assert_eq!(s.list_images().unwrap(), vec![]);
    assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
}

#[test]
fn push_mounts_a_blob_known_in_another_repository_of_the_same_registry() {
    let (manifest, config, layer) = fake_image();
    let (cd, ld) = (Digest::of(&config), Digest::of(&layer));
    let (port, log) = serve_fn(Arc::new(move |req: &Req| {
        let p = req.path.as_str();
        let ok = |b: &[u8]| ("200 OK".to_string(), vec![], b.to_vec());
        match req.method.as_str() {
            "GET" if p == "/v2/src/img/manifests/latest" => (
                "200 OK".into(),
                vec![(
                    "Content-Type".into(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                )],
                manifest.clone(),
            ),
            "GET" if p == format!("/v2/src/img/blobs/{cd}") => ok(&config),
            "GET" if p == format!("/v2/src/img/blobs/{ld}") => ok(&layer),
            "HEAD" => ("404 Not Found".into(), vec![], vec![]),
            "POST" if p.contains("mount=") => ("201 Created".into(), vec![], vec![]),
            "POST" => (
                "202 Accepted".into(),
                vec![("Location".into(), "/v2/dst/img/blobs/uploads/u1".into())],
                vec![],
            ),
            "PUT" if p.starts_with("/v2/dst/img/blobs/uploads/u1?digest=") => {
                ("201 Created".into(), vec![], vec![])
            }
            "PUT" if p == "/v2/dst/img/manifests/v1" => ("201 Created".into(), vec![], vec![]),
            _ => ("404 Not Found".into(), vec![], b"{}".to_vec()),
        }
    }));
    let c = client();
    let src: ImageRef = format!("127.0.0.1:{port}/src/img").parse().unwrap();
    let dest: ImageRef = format!("127.0.0.1:{port}/dst/img:v1").parse().unwrap();
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let pulled = c
        .pull(&src, &Platform::parse("linux/amd64").unwrap(), &s)
        .unwrap();
    assert_eq!(
        c.push(&s, &pulled.manifest_digest, &dest).unwrap(),
        pulled.manifest_digest
    );
    let log = log.lock().unwrap();
    let mounts: Vec<&Req> = log.iter().filter(|q| q.method == "POST").collect();
    assert_eq!(mounts.len(), 2, "{log:#?}");
    assert!(
        mounts.iter().all(|q| q.path.contains("from=src/img")),
        "{mounts:#?}"
    );
    assert!(
        !log.iter()
            .any(|q| q.method == "PUT" && q.path.contains("/blobs/")),
        "blobs were uploaded, not mounted"
    );
    let put = log.iter().find(|q| q.method == "PUT").unwrap();
    assert_eq!(
        put.header("Content-Type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
}

#[test]
fn a_blob_over_the_monolithic_limit_is_pushed_in_chunks_and_pulls_back() {
    if !lab_up() {
        eprintln!("SKIPPED: no registry at localhost:5000");
        return;
    }
    let size = hoist::registry::MONOLITHIC_UPLOAD_MAX as usize + 3 * 1024 * 1024 + 17;
    let mut layer = vec![0u8; size];
    let mut x: u32 = std::process::id();
    for b in layer.iter_mut() {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *b = (x >> 24) as u8;
    }
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let d1 = tempfile::tempdir().unwrap();
    let s1 = Store::open(d1.path()).unwrap();
    let cd = s1.put_blob(&config).unwrap();
    let ld = s1.put_blob(&layer).unwrap();
    drop(layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{size}}}]}}"#,
        config.len()
    );
    let md = s1.put_blob(manifest.as_bytes()).unwrap();
    let c = client();
    let dest: ImageRef = format!("localhost:5000/hoist-test/big:t{}", std::process::id())
        .parse()
        .unwrap();
    assert_eq!(c.push(&s1, &md, &dest).unwrap(), md);
    let d2 = tempfile::tempdir().unwrap();
    let s2 = Store::open(d2.path()).unwrap();
    let back = c
        .pull(&dest, &Platform::parse("linux/amd64").unwrap(), &s2)
        .unwrap();
    assert_eq!(back.manifest_digest, md);
    assert_eq!(
        std::fs::metadata(s2.blob_path(&ld)).unwrap().len(),
        size as u64
    );
}

#[test]
fn a_dropped_download_resumes_with_range() {
    let (manifest, config, layer) = fake_image();
    let (cd, ld) = (Digest::of(&config), Digest::of(&layer));
    let layer2 = layer.clone();
    let (port, log) = serve_fn(Arc::new(move |req: &Req| {
        let p = req.path.as_str();
        if p == "/v2/x/img/manifests/latest" {
            let ct = "application/vnd.oci.image.manifest.v1+json".to_string();
            return (
                "200 OK".into(),
                vec![("Content-Type".into(), ct)],
                manifest.clone(),
            );
        }
        if p == format!("/v2/x/img/blobs/{cd}") {
            return ("200 OK".into(), vec![], config.clone());
        }
        if p == format!("/v2/x/img/blobs/{ld}") {
            return match req.header("Range") {
                None => (
                    "200 OK".into(),
                    vec![("X-Truncate-At".into(), "7".into())],
                    layer2.clone(),
                ),
                Some(r) => {
                    let from: usize = r
                        .trim_start_matches("bytes=")
                        .trim_end_matches('-')
                        .parse()
                        .unwrap();
                    (
                        "206 Partial Content".into(),
                        vec![],
                        layer2[from..].to_vec(),
                    )
                }
            };
        }
        ("404 Not Found".into(), vec![], b"{}".to_vec())
    }));
    let c = client();
    let r: ImageRef = format!("127.0.0.1:{port}/x/img").parse().unwrap();
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    c.pull(&r, &Platform::parse("linux/amd64").unwrap(), &s)
        .unwrap();
    assert_eq!(s.read_blob(&Digest::of(&layer)).unwrap(), layer);
    let log = log.lock().unwrap();
    let ranges: Vec<_> = log.iter().filter_map(|q| q.header("Range")).collect();
    assert_eq!(ranges, vec!["bytes=7-"]);
}

fn hoist(
    root: &std::path::Path,
    cfg: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> (i32, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .env("HOIST_ROOT", root)
        .env("DOCKER_CONFIG", cfg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_pull_images_tag_inspect_fsck_rmi_prune_login_logout() {
    if !lab_up() {
        eprintln!("SKIPPED: no registry at localhost:5000");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let (r, c) = (root.path(), cfg.path());
    let (code, digest, _) = hoist(r, c, &["pull", "-q", "localhost:5000/busybox"], "");
    assert_eq!(code, 0);
    let digest: Digest = digest.trim().parse().unwrap();
    assert_eq!(
        hoist(r, c, &["tag", "localhost:5000/busybox", "mine:1"], "").0,
        0
    );
    let (_, list, _) = hoist(r, c, &["images"], "");
    assert!(
        list.contains("localhost:5000/busybox") && list.contains("docker.io/library/mine"),
        "{list}"
    );
    let (code, json, _) = hoist(r, c, &["inspect", "mine:1"], "");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["Digest"], digest.to_string());
    assert_eq!(v[0]["Config"]["os"], "linux");

    // fsck finds a corrupted blob, exits 1, and --repair removes it.
    let store = Store::open(r).unwrap();
    let (m, _) = store.load_image(&digest).unwrap();
    let p = store.blob_path(&m.config.digest);
    let mut perm = std::fs::metadata(&p).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&p, perm).unwrap();
    std::fs::write(&p, b"{}").unwrap();
    let (code, out, _) = hoist(r, c, &["fsck"], "");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("corrupt blob {}", m.config.digest)),
        "{out}"
    );
    assert_eq!(hoist(r, c, &["fsck", "--repair"], "").0, 0);
    assert!(!store.has_blob(&m.config.digest));
    // Names whose image lost a blob go too (pull again to get them back).
    assert_eq!(store.list_images().unwrap(), vec![]);
    assert_eq!(hoist(r, c, &["fsck"], "").0, 0);
    assert_eq!(
        hoist(r, c, &["pull", "-q", "localhost:5000/busybox"], "").0,
        0
    );
    assert_eq!(
        hoist(r, c, &["tag", "localhost:5000/busybox", "mine:1"], "").0,
        0
    );
    assert!(store.has_blob(&m.config.digest));

    // rmi + prune leave nothing behind.
    assert_eq!(
        hoist(r, c, &["rmi", "mine:1", "localhost:5000/busybox"], "").0,
        0
    );
    assert_eq!(hoist(r, c, &["rmi", "mine:1"], "").0, 1);
    assert_eq!(hoist(r, c, &["prune"], "").0, 0);
    assert_eq!(
        std::fs::read_dir(r.join("blobs/sha256")).unwrap().count(),
        0
    );

    // login writes Docker's config.json; logout removes the entry.
    let (code, out, err) = hoist(
        r,
        c,
        &["login", "-u", "me", "--password-stdin", "localhost:5000"],
        "pw\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(c.join("config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["auths"]["localhost:5000"]["auth"], "bWU6cHc=");
    assert_eq!(hoist(r, c, &["logout", "localhost:5000"], "").0, 0);
    let text = std::fs::read_to_string(c.join("config.json")).unwrap();
    assert!(!text.contains("localhost:5000"), "{text}");
}

#[test]
fn save_and_load_round_trip_and_legacy_docker_archives_load() {
    if !lab_up() {
        eprintln!("SKIPPED: no registry at localhost:5000");
        return;
    }
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    let work = tempfile::tempdir().unwrap();
    let r1 = work.path().join("r1");
    let (code, digest, _) = hoist(&r1, c, &["pull", "-q", "localhost:5000/busybox"], "");
    assert_eq!(code, 0);
    let digest = digest.trim().to_string();
    for format in ["docker", "oci"] {
        let tar = work.path().join(format!("{format}.tar"));
        let tar_s = tar.to_str().unwrap();
        let (code, _, err) = hoist(
            &r1,
            c,
            &[
                "save",
                "--format",
                format,
                "-o",
                tar_s,
                "localhost:5000/busybox",
            ],
            "",
        );
        assert_eq!(code, 0, "{err}");
        let r2 = work.path().join(format!("load-{format}"));
        let (code, out, err) = hoist(&r2, c, &["load", "-i", tar_s], "");
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out.trim(),
            format!("Loaded image: localhost:5000/busybox:latest ({digest})")
        );
        let s2 = Store::open(&r2).unwrap();
        s2.load_image(&digest.parse().unwrap()).unwrap();
    }
    // A classic docker-archive (layer.tar + <hex>.json + manifest.json), as skopeo writes it.
    let legacy = work.path().join("legacy.tar");
    let made = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "docker://localhost:5000/busybox:latest",
        ])
        .arg(format!("docker-archive:{}:legacy/box:1", legacy.display()))
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED legacy part: skopeo could not write a docker-archive");
        return;
    }
    let r3 = work.path().join("r3");
    let (code, out, err) = hoist(&r3, c, &["load", "-i", legacy.to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Loaded image: docker.io/legacy/box:1 (sha256:"),
        "{out}"
    );
    let s3 = Store::open(&r3).unwrap();
    let d = s3.get_image("docker.io/legacy/box:1").unwrap().unwrap();
    let (m, cfg) = s3.load_image(&d).unwrap();
    assert_eq!(m.layers.len(), cfg.rootfs.diff_ids.len());
    assert_eq!(
        m.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    // Uncompressed layers: the blob digest is the diffID.
    assert_eq!(m.layers[0].digest, cfg.rootfs.diff_ids[0]);
}

/// A `docker-registry` child process, killed on drop.
struct RegistryProcess(std::process::Child);

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(dir: &std::path::Path, script: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn https_registry_with_a_custom_ca_and_htpasswd_basic_auth() {
    use std::net::ToSocketAddrs;
    if !lab_up() {
        eprintln!("SKIPPED: no registry at localhost:5000");
        return;
    }
    // A host name (not localhost/127.x, so hoist uses TLS) that resolves to loopback.
    let host = std::process::Command::new("hostname")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let Ok(host) = host else { return };
    let loopback = (host.as_str(), 1)
        .to_socket_addrs()
        .is_ok_and(|mut a| a.all(|x| x.ip().is_loopback()));
    if host.is_empty() || host == "localhost" || !loopback {
        eprintln!("SKIPPED: the host name does not resolve to loopback");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ok = sh(
        d,
        &format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=hoist-test-ca \
               -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign && \
             openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN={host} && \
             printf 'subjectAltName=DNS:{host}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext && \
             openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext && \
             htpasswd -Bbn me pw > htpasswd"
        ),
    );
    if !ok {
        eprintln!("SKIPPED: openssl/htpasswd could not make the fixtures");
        return;
    }
    let d_s = d.display();
    std::fs::write(
        d.join("config.yml"),
        format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {d_s}/data}}}}\n\
             http: {{addr: '127.0.0.1:{port}', tls: {{certificate: {d_s}/srv.crt, key: {d_s}/srv.key}}}}\n\
             auth: {{htpasswd: {{realm: hoist-test, path: {d_s}/htpasswd}}}}\n"
        ),
    )
    .unwrap();
    let Ok(child) = std::process::Command::new("docker-registry")
        .arg("serve")
        .arg(d.join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        eprintln!("SKIPPED: docker-registry is not installed");
        return;
    };
    let _reg = RegistryProcess(child);
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "docker-registry did not start");

    let reg = format!("{host}:{port}");
    let cfg = d.join("docker");
    let root = d.join("root");
    let run = |args: &[&str], stdin: &str, ca: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args(args)
            .env("HOIST_ROOT", &root)
            .env("DOCKER_CONFIG", &cfg);
        if ca {
            cmd.env("SSL_CERT_FILE", d.join("ca.crt"));
        } else {
            cmd.env_remove("SSL_CERT_FILE");
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, digest, _) = run(&["pull", "-q", "localhost:5000/busybox"], "", true);
    assert_eq!(code, 0);
    let dest = format!("{reg}/t/box:1");
    // Untrusted certificate without the CA.
    let (code, _, err) = run(&["push", "-q", "localhost:5000/busybox", &dest], "", false);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("https://{reg}/v2/")), "{err}");
    // Trusted, but no credentials yet.
    let (code, _, err) = run(&["push", "-q", "localhost:5000/busybox", &dest], "", true);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("run `hoist login {reg}`")), "{err}");
    // Wrong, then right password.
    let (code, _, err) = run(
        &["login", "-u", "me", "--password-stdin", &reg],
        "nope\n",
        true,
    );
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = run(
        &["login", "-u", "me", "--password-stdin", &reg],
        "pw\n",
        true,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "Login Succeeded");
    let (code, pushed, err) = run(&["push", "-q", "localhost:5000/busybox", &dest], "", true);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pushed.trim(), digest.trim());
    std::fs::remove_dir_all(&root).unwrap();
    let (code, pulled, err) = run(&["pull", "-q", &dest], "", true);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pulled.trim(), digest.trim());
}
