//! Shared by the extraction targets: a sandbox dir `/tmp/hoist-fuzz/<target>/` holding a
//! canary tree beside the extraction dest, and the checks that nothing outside the dest
//! changed. The path is fixed (not random) so seeds can hold absolute symlinks that aim at the
//! canary; run one fuzzer per target at a time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// Everything observable about one canary entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Observed {
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    nlink: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// File contents, or a symlink's target.
    data: Vec<u8>,
}

pub struct Sandbox {
    pub parent: PathBuf,
    pub canary: PathBuf,
    pub dest: PathBuf,
    before: BTreeMap<PathBuf, Observed>,
}

/// Root of every sandbox; `<ROOT>/<target>/canary` is what absolute-symlink seeds aim at.
pub const ROOT: &str = "/tmp/hoist-fuzz";

impl Sandbox {
    /// Creates (afresh) `/tmp/hoist-fuzz/<name>/canary` and records it.
    pub fn create(name: &str) -> Sandbox {
        let parent = Path::new(ROOT).join(name);
        if parent.exists() {
            fs::remove_dir_all(&parent).expect("removing a stale sandbox");
        }
        fs::create_dir_all(&parent).expect("creating the sandbox");
        let canary = parent.join("canary");
        make_canary(&canary);
        let before = snapshot(&canary);
        Sandbox {
            dest: parent.join("dest"),
            parent,
            canary,
            before,
        }
    }

    /// Runs `f` on a fresh empty dest, checks the invariants, removes the dest.
    pub fn with_dest(&self, f: impl FnOnce(&Path)) {
        if fs::symlink_metadata(&self.dest).is_ok() {
            fs::remove_dir_all(&self.dest).expect("removing a leftover dest");
        }
        fs::create_dir(&self.dest).expect("creating dest");
        f(&self.dest);
        self.check();
        // remove_dir_all never follows symlinks (it unlinks them), so a hostile tree inside
        // dest cannot make this delete anything outside it.
        fs::remove_dir_all(&self.dest).expect("removing dest");
    }

    /// The invariants: the canary tree is identical (names, types, modes, owners, sizes,
    /// link counts, times, contents, link targets), the parent holds exactly `canary` and
    /// `dest`, and dest is still a real directory.
    pub fn check(&self) {
        let after = snapshot(&self.canary);
        if after != self.before {
            for (k, v) in &self.before {
                match after.get(k) {
                    None => eprintln!("canary entry removed: {}", k.display()),
                    Some(a) if a != v => {
                        eprintln!("canary entry changed: {}: {v:?} -> {a:?}", k.display())
                    }
                    _ => {}
                }
            }
            for k in after.keys().filter(|k| !self.before.contains_key(*k)) {
                eprintln!("canary entry added: {}", k.display());
            }
            panic!("the canary beside dest changed");
        }
        let mut names: Vec<OsString> = fs::read_dir(&self.parent)
            .expect("listing the sandbox")
            .map(|e| e.expect("sandbox entry").file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [OsString::from("canary"), OsString::from("dest")],
            "something was created beside dest"
        );
        let m = fs::symlink_metadata(&self.dest).expect("dest vanished");
        assert!(m.file_type().is_dir(), "dest is no longer a directory");
    }
}

fn make_canary(c: &Path) {
    let file = |p: &str, data: &[u8], mode: u32, owner: Option<(u32, u32)>| {
        let path = c.join(p);
        fs::write(&path, data).expect("canary file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("canary chmod");
        if let Some((u, g)) = owner {
            std::os::unix::fs::chown(&path, Some(u), Some(g)).expect("canary chown (run as root)");
        }
    };
    fs::create_dir(c).expect("canary dir");
    file("precious", b"keep me", 0o644, None);
    file("secret", b"top secret\n", 0o600, Some((1234, 5678)));
    file("setuid", b"#!/bin/sh\nexit 0\n", 0o4755, None);
    file("empty", b"", 0o444, Some((65534, 65534)));
    fs::create_dir(c.join("sub")).expect("canary subdir");
    fs::set_permissions(c.join("sub"), fs::Permissions::from_mode(0o750)).expect("chmod sub");
    std::os::unix::fs::chown(c.join("sub"), Some(1000), Some(1000)).expect("chown sub");
    file("sub/inner", b"inner data", 0o640, Some((1000, 1000)));
    symlink("precious", c.join("link")).expect("canary symlink");
    symlink("sub", c.join("dirlink")).expect("canary dir symlink");
    symlink("/etc/hostname", c.join("abs")).expect("canary abs symlink");
}

/// Walks `root` without following symlinks; records `root` itself too.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Observed> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p).expect("canary stat");
        let data = if m.file_type().is_file() {
            fs::read(&p).expect("canary read")
        } else if m.file_type().is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            fs::read_link(&p)
                .expect("canary readlink")
                .as_os_str()
                .as_bytes()
                .to_vec()
        } else {
            Vec::new()
        };
        if m.file_type().is_dir() {
            for e in fs::read_dir(&p).expect("canary readdir") {
                todo.push(e.expect("canary entry").path());
            }
        }
        out.insert(
            p,
            Observed {
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                size: m.size(),
                nlink: m.nlink(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
                data,
            },
        );
    }
    out
}
