//! The rootless side of the integration tests (issue 15), shared by `tests/rootless.rs` and
//! `tests/rootless_hostile.rs`: tests run as root (as CI does) and make the unprivileged side
//! themselves: a user (`useradd`, idempotent) with or without a range in `/etc/subuid` and
//! `/etc/subgid`, a temp dir it owns as `HOME`/`XDG_*`, and the real binary run as that user
//! through `setpriv` (which keeps the environment). Needs Debian's `uidmap`
//! (`newuidmap`/`newgidmap`).

use super::{Hoist, Need};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// `/etc/subuid` and `/etc/subgid` are edited by one test at a time.
static ID_FILES: Mutex<()> = Mutex::new(());

/// A user of the host made for a test (see [`user`]).
pub struct User {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
}

/// The numeric id (`flag`: `-u`/`-g`) of `name`, if the user exists.
fn id_of(name: &str, flag: &str) -> Option<u32> {
    let o = Command::new("id").args([flag, name]).output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// Creates `name` if missing and sets (or removes) its lines in `/etc/subuid`/`/etc/subgid`.
pub fn user(name: &'static str, range: Option<(u32, u32)>) -> User {
    let _g = ID_FILES.lock().unwrap_or_else(|p| p.into_inner());
    if id_of(name, "-u").is_none() {
        let o = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", name])
            .output()
            .expect("useradd (passwd package)");
        assert!(
            o.status.success() || id_of(name, "-u").is_some(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let old = std::fs::read_to_string(file).unwrap_or_default();
        let mut text: String = old
            .lines()
            .filter(|l| l.split(':').next() != Some(name))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Some((start, count)) = range {
            text.push_str(&format!("{name}:{start}:{count}\n"));
        }
        if text != old {
            std::fs::write(file, text).unwrap();
        }
    }
    User {
        name,
        uid: id_of(name, "-u").unwrap(),
        gid: id_of(name, "-g").unwrap(),
    }
}

/// A temp dir owned by `u`, with `ctx/` holding `files`.
pub fn home(u: &User, files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("ctx")).unwrap();
    for (name, body) in files {
        std::fs::write(d.path().join("ctx").join(name), body).unwrap();
    }
    let o = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", u.uid, u.gid))
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    d
}

/// `hoist --root <home>/store …` run as `u` with `HOME` and `XDG_*` in `home`.
pub fn as_user(u: &User, home: &Path) -> Hoist {
    let bin = reachable_bin();
    let mut w = Command::new("setpriv");
    w.arg(format!("--reuid={}", u.uid))
        .arg(format!("--regid={}", u.gid))
        .args(["--clear-groups", "--"])
        .current_dir(home.join("ctx"));
    Hoist::under_bin(w, bin, &home.join("store"))
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", home)
        .env("USER", u.name)
        .arg("--insecure-registry")
        .arg("localhost:5000")
}

/// The hoist binary at a path the test users can reach: the build's own when every directory
/// above it is searchable by others, else a copy in a world-searchable temp dir (a CI checkout
/// under `/root` is not). The copy is self-contained: the sandbox init is embedded in it.
pub fn reachable_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let bin = Path::new(super::run::BIN);
        if bin
            .ancestors()
            .skip(1)
            .all(|d| d.as_os_str().is_empty() || world_searchable(d))
        {
            return bin.to_path_buf();
        }
        let dir = std::env::temp_dir().join(format!("hoist-rootless-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("hoist");
        std::fs::copy(bin, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            copy.ancestors().skip(1).all(world_searchable),
            "{} must be reachable by other users",
            copy.display()
        );
        copy
    })
}

fn world_searchable(d: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

/// Root, the lab registry, an OCI runtime, `newuidmap` and `setpriv` (see [`super::ready`]).
pub fn ready() -> bool {
    if !super::ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return false;
    }
    super::require("newuidmap", "uidmap");
    super::require("setpriv", "util-linux");
    true
}
