//! The integration tests' shared harness, one module for every suite that runs the binary or
//! a registry: [`run`] (the one `hoist` runner and its environment rule), [`lab`] (the one
//! prerequisite check: root, the lab registry, an OCI runtime; fail in CI, skip elsewhere),
//! and, here, Debian's `docker-registry` on free loopback ports (plain HTTP, HTTPS with a
//! generated CA and htpasswd, or token auth) with a token issuer that signs JWTs with a test
//! key, plus [`proxy`], a fault-injecting HTTP proxy. Tools the harness starts itself
//! (`docker-registry`, `openssl`, `htpasswd`) fail with the package to install.
// Each suite uses part of the harness.
#![allow(dead_code, unused_imports, clippy::print_stderr)]

pub mod git;
pub mod http;
pub mod lab;
pub mod proxy;
pub mod rawtar;
pub mod rootless;
pub mod run;

pub use lab::{Need, ready};
pub use run::{Hoist, hoist, text};

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Panics with the Debian package to install when `bin` is not on PATH.
pub fn require(bin: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{bin}` is needed by this test but is not installed: apt-get install {package}"
    );
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

pub fn wait_port(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early ({st})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 20 s");
}

pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// HTTPS with a CA generated for the test, and htpasswd basic auth.
    TlsBasic {
        user: String,
        password: String,
    },
    /// `auth: token` trusting `issuer`'s signing certificate; `realm` is the token URL.
    Token {
        realm: String,
        issuer: TokenKeys,
    },
}

/// The signing key and certificate of a test token issuer.
#[derive(Clone)]
pub struct TokenKeys {
    pub key: PathBuf,
    pub cert: PathBuf,
    pub cert_der_b64: String,
}

impl TokenKeys {
    pub fn generate(dir: &Path) -> TokenKeys {
        require("openssl", "openssl");
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=hoist-test-issuer",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert));
        use base64::Engine as _;
        let cert_der_b64 = base64::engine::general_purpose::STANDARD.encode(der);
        TokenKeys {
            key,
            cert,
            cert_der_b64,
        }
    }
}

pub const SERVICE: &str = "hoist-test-registry";
pub const ISSUER: &str = "hoist-test-issuer";

/// A running `docker-registry`.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub host: String,
    /// CA that signed the server certificate (TLS only).
    pub ca: Option<PathBuf>,
    child: Child,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        require("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let mut ca = None;
        match &auth {
            Auth::None => {}
            Auth::TlsBasic { user, password } => {
                require("openssl", "openssl");
                require("htpasswd", "apache2-utils");
                let d = dir.path();
                run(Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=hoist test CA",
                    ])
                    .args([
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ])
                    .arg("-keyout")
                    .arg(d.join("ca.key"))
                    .arg("-out")
                    .arg(d.join("ca.crt")));
                run(Command::new("openssl")
                    .args([
                        "req",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-subj",
                        "/CN=127.0.0.1",
                    ])
                    .arg("-keyout")
                    .arg(d.join("server.key"))
                    .arg("-out")
                    .arg(d.join("server.csr")));
                std::fs::write(
                    d.join("ext.cnf"),
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
                )
                .expect("write ext");
                run(Command::new("openssl")
                    .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                    .arg("-in")
                    .arg(d.join("server.csr"))
                    .arg("-CA")
                    .arg(d.join("ca.crt"))
                    .arg("-CAkey")
                    .arg(d.join("ca.key"))
                    .arg("-extfile")
                    .arg(d.join("ext.cnf"))
                    .arg("-out")
                    .arg(d.join("server.crt")));
                let ht = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                std::fs::write(d.join("htpasswd"), ht).expect("write htpasswd");
                cfg.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: hoist-test\n    path: {}\n",
                    d.join("server.crt").display(),
                    d.join("server.key").display(),
                    d.join("htpasswd").display()
                ));
                ca = Some(d.join("ca.crt"));
            }
            Auth::Token { realm, issuer } => {
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    issuer.cert.display()
                ));
            }
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::File::create(&cfg_path)
            .and_then(|mut f| f.write_all(cfg.as_bytes()))
            .expect("write config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        wait_port(port, &mut child, "docker-registry");
        Registry {
            port,
            host,
            ca,
            dir,
            child,
        }
    }

    /// A certs.d-style directory holding this registry's CA as `HOST:PORT/ca.crt`.
    pub fn certs_dir(&self) -> PathBuf {
        let d = self.dir.path().join("certs.d");
        let sub = d.join(&self.host);
        std::fs::create_dir_all(&sub).expect("mkdir certs.d");
        if let Some(ca) = &self.ca {
            std::fs::copy(ca, sub.join("ca.crt")).expect("copy ca");
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

/// Writes a Docker config.json with `auths` for `host`.
pub fn docker_config(dir: &Path, host: &str, entry: serde_json::Value) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let v = serde_json::json!({ "auths": { host: entry } });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&v).expect("json"),
    )
    .expect("write config.json");
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for transfer tests.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Puts a small image (a gzip layer of a tar with `files`, a config, a manifest) in the store
/// under `name` and returns its manifest digest.
pub fn fixture_image(
    store: &hoist::store::Store,
    name: &str,
    files: &[(&str, Vec<u8>)],
) -> hoist::oci::Digest {
    use hoist::oci::{Descriptor, Digest, Manifest, media};
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, data.as_slice()).expect("tar");
    }
    let raw = tar.into_inner().expect("tar");
    let diff = Digest::of(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    let layer = gz.finish().expect("gzip");
    let ld = store.put_blob(&layer).expect("put layer");
    let cfg = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]},
        "history": [{"created_by": "hoist test"}]
    });
    let cfg = serde_json::to_vec(&cfg).expect("json");
    let cd = store.put_blob(&cfg).expect("put config");
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(media::OCI_CONFIG, cd, cfg.len() as u64),
        layers: vec![Descriptor::new(
            media::OCI_LAYER_GZIP,
            ld,
            layer.len() as u64,
        )],
        annotations: None,
    };
    let md = store
        .put_blob(&serde_json::to_vec(&m).expect("json"))
        .expect("put manifest");
    store.set_image(name, &md).expect("set image");
    md
}

/// Every blob file in a store root, by name.
pub fn blob_names(root: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(root.join("blobs/sha256"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
