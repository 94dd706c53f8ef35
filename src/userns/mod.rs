//! Rootless start-up: an ordinary user's hoist enters a new user namespace (and mount
//! namespace) in which it is root, so every later step (extraction with the image's owners,
//! overlay mounts, the OCI runtime) runs unchanged. Nothing below this module branches on
//! "rootless": inside the namespace hoist *is* root; only the few facts that differ (where
//! the store lives by default, which overlay xattrs the kernel lets it set, whether ids other
//! than 0 exist, whether cgroups are writable) are asked of this module.
//!
//! How the namespace is entered ([`enter`], the first thing `main` does, while the process
//! is still single-threaded; `unshare(CLONE_NEWUSER)` refuses a multi-threaded caller), in
//! this same process, with no re-exec and no launcher left waiting:
//! 1. with ranges in `/etc/subuid` and `/etc/subgid`, hoist forks a helper that waits on a
//!    pipe (`mapper.rs`; the id-map helpers must run outside the new namespace);
//! 2. hoist calls `unshare(CLONE_NEWUSER | CLONE_NEWNS)` and tells the helper, which runs the
//!    setuid `newuidmap` and `newgidmap` on hoist's pid (user → 0, the range → 1…N), both at
//!    once, and exits;
//! 3. without ranges, or when the helpers failed, hoist writes the single-id map itself
//!    (user → 0 only, `setgroups` denied);
//! 4. hoist reads its maps back ([`Mapping`]), makes its mounts private, and runs the command
//!    as root of the namespace. Signals and the exit status are its own: there is no parent
//!    to forward them.
//!
//! An earlier design re-executed hoist in the namespace behind a launcher; the in-place
//! entry saves that second start (a few ms of every rootless build, most of a cached one).
//!
//! Files the namespace's root creates belong to the user on the host; ids 1…N land in the
//! subordinate range. The kernel never lets a user namespace make device nodes: extraction
//! leaves a base layer's devices out there (as containerd does), FIFOs are kept. The images are the same as a root build's: layers record the ids as
//! seen inside the namespace, which are the image's own.

mod mapper;
pub mod subid;
mod unshare;

use std::sync::OnceLock;

/// Set `HOIST_USERNS=0` to never enter a user namespace (hoist then runs as the user, and
/// anything needing root fails as before).
pub const DISABLE_ENV: &str = "HOIST_USERNS";

/// The id mapping of the user namespace hoist runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// The user is 0 and a subordinate range is 1…N (`uids`/`gids` ids mapped in all).
    Ranges { uids: u32, gids: u32 },
    /// Only the user, as 0: every file on disk belongs to root (a chown to another id is
    /// skipped where hoist extracts or copies, [`chown_result`]) and `USER` other than root
    /// cannot run. Layer tar headers that hoist writes from a request (`COPY --chown`) keep
    /// the asked owner.
    SingleId,
}

static CURRENT: OnceLock<Mapping> = OnceLock::new();

/// Enters the user namespace when hoist runs as an ordinary user (see the module doc). Must
/// be called first in `main`, before any thread exists. Returns a note to print once (why
/// ids are limited, or why no namespace could be entered).
pub fn enter() -> Option<String> {
    if rustix::process::geteuid().is_root()
        || std::env::var(DISABLE_ENV).is_ok_and(|v| v == "0" || v == "off")
    {
        return None;
    }
    unshare::become_root()
}

/// The mapping of the namespace hoist entered, or `None` when it runs with the host's ids
/// (real root, or `HOIST_USERNS=0`).
pub fn current() -> Option<Mapping> {
    CURRENT.get().copied()
}

/// True when hoist is root on the host (not root of its own user namespace): decides the
/// store's and the pool's default places.
pub fn host_root() -> bool {
    rustix::process::geteuid().is_root() && current().is_none()
}

/// The user's id on the host: what id 0 of hoist's namespace maps to, else the euid.
pub fn host_uid() -> u32 {
    let me = rustix::process::geteuid().as_raw();
    if current().is_none() {
        return me;
    }
    std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<u32> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (f.len() == 3 && f[0] <= me && me - f[0] < f[2]).then(|| f[1] + (me - f[0]))
            })
        })
        .unwrap_or(me)
}

/// True when a chown to an id the namespace does not map should leave the file owned by
/// root instead of failing: only under [`Mapping::SingleId`], whose note says so once.
pub fn keep_unmapped_owner() -> bool {
    current() == Some(Mapping::SingleId)
}

/// A chown's result, with EINVAL (the kernel's answer for an id the namespace does not map)
/// turned into success under [`Mapping::SingleId`]: the file stays root's, as the
/// start-up note says. Under a range mapping an unmapped id stays an error.
pub fn chown_result(r: rustix::io::Result<()>) -> rustix::io::Result<()> {
    match r {
        Err(rustix::io::Errno::INVAL) if keep_unmapped_owner() => Ok(()),
        r => r,
    }
}

/// [`chown_result`] for `std`'s chown calls.
pub fn io_chown_result(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && keep_unmapped_owner() => Ok(()),
        r => r,
    }
}

/// The xattr overlayfs reads an opaque-dir marker from: `trusted.overlay.opaque` as host
/// root, `user.overlay.opaque` in a user namespace (which cannot set `trusted.*`; its
/// overlays are mounted with `userxattr`).
pub fn opaque_xattr() -> &'static str {
    if current().is_some() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// True when cgroup limits can be applied: as host root, or in a namespace whose user owns
/// a delegated cgroup v2 subtree (not detected yet: treated as absent).
pub fn cgroups_writable() -> bool {
    current().is_none()
}

/// The note printed once when only the single-id mapping is available.
fn single_id_note(reason: &str) -> String {
    format!(
        "note: rootless with a single id ({reason}): inside the build every file is root's \
         (a base layer's other owners are not kept; chown to another id in a RUN fails), and \
         USER other than root cannot run; a range for your user in /etc/subuid and /etc/subgid \
         lifts this (e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \
         USER`, with Debian's uidmap package)"
    )
}

/// Errors of entering the namespace (reported as notes: hoist then runs without it).
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Map {
        path: String,
        source: std::io::Error,
    },
}
