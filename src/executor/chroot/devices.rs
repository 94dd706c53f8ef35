//! A minimal `/dev` without mounting one: the device nodes, links and dirs a runtime's `/dev`
//! tmpfs has (`null`, `zero`, `full`, `random`, `urandom`, `tty`, the `fd`/`stdio` links to
//! `/proc/self/fd`, `ptmx`, `pts/`, `shm/`), made where the image has none before the run
//! (`mknod` needs `CAP_MKNOD`, in Docker's default set; a pod's device cgroup lets these few
//! be opened; where a node cannot be made, an empty file stands in) and removed after it, so no layer records them, as BuildKit's tmpfs leaves none.
//! `/proc` and `/sys` stay empty: they cannot be had without mounting.

use crate::executor::{ExecutorError, Result};
use rustix::fs::{AtFlags, FileType, Mode};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// Character devices: name, major, minor.
const NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Symlinks: name, target.
const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Dirs: name, mode.
const DIRS: [(&str, u32); 2] = [("pts", 0o755), ("shm", 0o1777)];

/// What [`populate`] made in the rootfs's `/dev`, removed by [`Populated::remove`].
#[derive(Debug)]
pub(super) struct Populated {
    dev: OwnedFd,
    made: Vec<&'static str>,
}

/// Makes the missing entries in the rootfs's `/dev` (a real dir by now: see `prepare`).
pub(super) fn populate(rfd: &OwnedFd) -> Result<Populated> {
    let dev = crate::fsroot::open(
        rfd,
        "dev",
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::PATH,
    )
    .map_err(|e| err("/dev", e))?;
    let mut p = Populated {
        dev,
        made: Vec::new(),
    };
    let exists =
        |fd: &OwnedFd, n: &str| rustix::fs::statat(fd, n, AtFlags::SYMLINK_NOFOLLOW).is_ok();
    for (name, major, minor) in NODES {
        if !exists(&p.dev, name) {
            let made = rustix::fs::mknodat(
                &p.dev,
                name,
                FileType::CharacterDevice,
                Mode::from_raw_mode(0o666),
                rustix::fs::makedev(major, minor),
            );
            if made.is_err() {
                // Refused (a device cgroup, a filesystem without device nodes): an empty file
                // in its place, so that writes to it are removed with it rather than leaving
                // a regular `/dev/null` for the layer.
                rustix::fs::openat(
                    &p.dev,
                    name,
                    rustix::fs::OFlags::CREATE
                        | rustix::fs::OFlags::EXCL
                        | rustix::fs::OFlags::WRONLY,
                    Mode::from_raw_mode(0o666),
                )
                .map_err(|e| err(name, e))?;
            }
            // mknod honours the umask.
            rustix::fs::chmodat(&p.dev, name, Mode::from_raw_mode(0o666), AtFlags::empty())
                .map_err(|e| err(name, e))?;
            p.made.push(name);
        }
    }
    for (name, target) in LINKS {
        if !exists(&p.dev, name) {
            rustix::fs::symlinkat(target, &p.dev, name).map_err(|e| err(name, e))?;
            p.made.push(name);
        }
    }
    for (name, mode) in DIRS {
        if !exists(&p.dev, name) {
            rustix::fs::mkdirat(&p.dev, name, Mode::from_raw_mode(mode))
                .map_err(|e| err(name, e))?;
            rustix::fs::chmodat(&p.dev, name, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(|e| err(name, e))?;
            p.made.push(name);
        }
    }
    Ok(p)
}

impl Populated {
    /// Removes what [`populate`] made (with anything the run put in `shm/` or `pts/`).
    pub(super) fn remove(self) -> Result<()> {
        let base = PathBuf::from(format!("/proc/self/fd/{}", self.dev.as_raw_fd()));
        for name in self.made.iter().rev() {
            super::tree::remove_any(&base.join(name)).map_err(|e| ExecutorError::Io {
                path: PathBuf::from("/dev").join(name),
                source: e,
            })?;
        }
        Ok(())
    }
}

fn err(name: &str, e: rustix::io::Errno) -> ExecutorError {
    ExecutorError::Io {
        path: PathBuf::from("/dev").join(name.trim_start_matches("/dev")),
        source: std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("making the sandbox's /dev without a mount: {e} (needs CAP_MKNOD)"),
        ),
    }
}
