//! Registry client against the lab registry at localhost:5000 (skipped with a message when it
//! is not running) and against a tiny in-process HTTP server that serves a wrong blob.

use hoist::oci::{Digest, Platform};
use hoist::registry::{Client, ImageRef, RegistryError, RegistryOptions};
use hoist::store::Store;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

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

/// Serves `routes` (path → (content type, body)) over HTTP/1.1 until the listener drops.
fn serve(routes: Vec<(String, String, Vec<u8>)>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let routes = routes.clone();
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
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let found = routes.iter().find(|(p, _, _)| *p == path);
                    let (status, ct, data) = match found {
                        Some((_, ct, b)) => ("200 OK", ct.clone(), b.clone()),
                        None => ("404 Not Found", "application/json".into(), b"{}".to_vec()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                        data.len()
                    );
                    conn.write_all(head.as_bytes()).unwrap();
                    if method != "HEAD" {
                        conn.write_all(&data).unwrap();
                    }
                }
            });
        }
    });
    port
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
