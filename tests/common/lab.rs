//! The one prerequisite check of the tests that need the machine: root, the lab registry
//! (`scripts/lab-setup.sh`: 127.0.0.1:5000 serving `busybox:latest`, and `debian:bookworm`
//! with `HOIST_LAB_DEBIAN=1`), an OCI runtime (crun or runc) and `/bin/busybox`.
//!
//! Rule: where the lab is required — `CI` is set (and not `0`/`false`), or
//! `HOIST_REQUIRE_LAB=1` (`scripts/test.sh` sets it) — a missing prerequisite fails the test
//! with what to install or run. Elsewhere the test passes without running and says so on
//! stderr (`skipped: …`), so `cargo test` on a laptop without the lab stays usable.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// The lab registry's address and its base image.
pub const LAB_REGISTRY: &str = "localhost:5000";
/// The base image the lab registry serves.
pub const LAB_BASE: &str = "localhost:5000/busybox:latest";

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Running as root (overlayfs, mounts, sandboxes).
    Root,
    /// The lab registry on 127.0.0.1:5000 with `busybox:latest`.
    LabRegistry,
    /// crun or runc, as hoist's executor finds them.
    OciRuntime,
    /// `/bin/busybox` (the executor tests build their rootfs from it).
    Busybox,
    /// The lab registry also serves `debian:bookworm` (`HOIST_LAB_DEBIAN=1`).
    LabDebian,
    /// The lab registry also serves the amd64 + arm64 index `multi/busybox:latest`.
    LabMulti,
}

impl Need {
    fn met(self) -> bool {
        match self {
            Need::Root => rustix::process::geteuid().is_root(),
            Need::LabRegistry => lab_registry_up(),
            Need::OciRuntime => hoist::executor::OciRuntime::detect().is_ok(),
            Need::Busybox => Path::new("/bin/busybox").exists(),
            Need::LabDebian => lab_has("debian"),
            Need::LabMulti => lab_has("multi/busybox"),
        }
    }

    fn missing(self) -> &'static str {
        match self {
            Need::Root => "needs root (overlayfs, sandbox, mounts)",
            Need::LabRegistry => {
                "the lab registry is not running on localhost:5000 with busybox:latest: run scripts/lab-setup.sh (as root) first"
            }
            Need::OciRuntime => "needs crun or runc: apt-get install crun",
            Need::Busybox => "needs /bin/busybox: apt-get install busybox-static",
            Need::LabDebian => {
                "the lab registry has no debian:bookworm: run HOIST_LAB_DEBIAN=1 scripts/lab-setup.sh (as root) first"
            }
            Need::LabMulti => {
                "the lab registry has no multi/busybox:latest: run scripts/lab-setup.sh (as root) first"
            }
        }
    }
}

/// True when a missing prerequisite must fail the test rather than skip it (see the module
/// doc).
pub fn lab_required() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    ci || std::env::var("HOIST_REQUIRE_LAB").is_ok_and(|v| v.trim() == "1")
}

/// True when every prerequisite in `needs` is met. Otherwise panics naming what is missing
/// where the lab is required, else prints `skipped: …` and returns false: the caller returns.
pub fn ready(needs: &[Need]) -> bool {
    let missing: Vec<&str> = needs
        .iter()
        .filter(|n| !n.met())
        .map(|n| n.missing())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = missing.join("; ");
    assert!(
        !lab_required(),
        "{why} (required: CI or HOIST_REQUIRE_LAB=1 is set)"
    );
    eprintln!("skipped: {why}");
    false
}

/// Whether the tool `bin` is on PATH. Otherwise, by the rule of [`ready`], panics with how to
/// install it (`install`) where the lab is required, else prints `skipped: …` and returns
/// false.
pub fn tool(bin: &str, install: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    if !found {
        assert!(
            !lab_required(),
            "`{bin}` is needed: {install} (scripts/lab-setup.sh does; required: CI or HOIST_REQUIRE_LAB=1 is set)"
        );
        eprintln!("skipped: `{bin}` is not installed ({install})");
    }
    found
}

/// Whether the lab registry serves busybox (asked once per test binary).
fn lab_registry_up() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    *UP.get_or_init(|| lab_has("busybox"))
}

/// Whether `GET /v2/REPO/tags/list` on 127.0.0.1:5000 answers 200.
fn lab_has(repo: &str) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], 5000));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET /v2/{repo}/tags/list HTTP/1.0\r\nHost: localhost:5000\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 32];
    let n = s.read(&mut head).unwrap_or(0);
    let line = String::from_utf8_lossy(&head[..n]);
    line.starts_with("HTTP/1.") && line.split(' ').nth(1) == Some("200")
}

/// GET `path` (`/v2/…`) from the lab registry with `Accept: accept`; panics on failure.
pub fn registry_get(path: &str, accept: &str) -> Vec<u8> {
    let url = format!("http://{LAB_REGISTRY}{path}");
    let resp = reqwest::blocking::Client::new()
        .get(&url)
        .header("Accept", accept)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.bytes().unwrap().to_vec()
}

/// [`registry_get`] parsed as JSON.
pub fn registry_json(path: &str, accept: &str) -> serde_json::Value {
    serde_json::from_slice(&registry_get(path, accept)).unwrap()
}
