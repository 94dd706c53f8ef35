//! Readying a writable rootfs for one run, and undoing it after, for every backend: the
//! run spec's checks, an image's `/dev` `/proc` `/sys` symlinks swapped for empty dirs, the
//! dirs and stub files that the working dir, the `/etc` files and the extra mounts need as
//! targets, and refusing a working dir or mount target that reaches `/proc` (runc
//! CVE-2024-21626). Every path is resolved in-root ([`fsutil`]); what [`Prepared::undo`]
//! removed or put back is what [`fixup`](super::fixup) needs to tidy the upper dir.

use super::fsutil::{self, Created, SwappedLink};
use super::{ExecutorError, MountKind, Result, RunSpec, io_err};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The `/etc` files every sandbox gets bind-mounted over (see [`etc_files`](super::etc_files)).
pub(crate) const ETC_FILES: [&str; 3] = ["/etc/resolv.conf", "/etc/hosts", "/etc/hostname"];

/// Checks what needs no rootfs: an argv, absolute paths, no working dir or mount target
/// inside the sandbox's `/proc`.
pub(crate) fn validate(spec: &RunSpec) -> Result<()> {
    if spec.argv.is_empty() {
        return Err(ExecutorError::InvalidSpec(
            "no command to run (empty argv)".into(),
        ));
    }
    if !spec.cwd.starts_with('/') {
        return Err(ExecutorError::InvalidSpec(format!(
            "working dir {:?} is not absolute",
            spec.cwd
        )));
    }
    for l in &spec.lowers {
        if !l.is_absolute() {
            return Err(ExecutorError::InvalidSpec(format!(
                "layer dir {} is not absolute",
                l.display()
            )));
        }
    }
    if let Some(u) = &spec.upper
        && !u.is_absolute()
    {
        return Err(ExecutorError::InvalidSpec(format!(
            "upper dir {} is not absolute",
            u.display()
        )));
    }
    // A working dir or mount target inside the sandbox's /proc (e.g. /proc/self/fd/N, the
    // runc CVE-2024-21626 vector) would reach host file descriptors.
    let in_proc = |p: &str| fsutil::components(p).first().is_some_and(|c| c == "proc");
    if in_proc(&spec.cwd) {
        return Err(ExecutorError::InvalidSpec(format!(
            "working dir {:?} is inside /proc; use a directory of the image",
            spec.cwd
        )));
    }
    for m in &spec.mounts {
        if in_proc(&m.target) {
            return Err(ExecutorError::InvalidSpec(format!(
                "mount target {:?} is inside /proc",
                m.target
            )));
        }
        if !m.target.starts_with('/') {
            return Err(ExecutorError::InvalidSpec(format!(
                "mount target {:?} is not absolute",
                m.target
            )));
        }
    }
    Ok(())
}

/// A rootfs readied for a run: its in-root handle and what to undo after.
#[derive(Debug)]
pub(crate) struct Prepared {
    rootfs: PathBuf,
    rfd: OwnedFd,
    /// Entries hoist created (removed after the run if still the same).
    stubs: Vec<Created>,
    /// Symlinks swapped for dirs (put back after the run).
    swapped: Vec<SwappedLink>,
}

/// What [`Prepared::undo`] removed and put back.
#[derive(Debug, Default)]
pub(crate) struct Undone {
    pub removed: Vec<Created>,
    pub restored: Vec<SwappedLink>,
}

/// Readies the mounted, writable `rootfs` for `spec`. The caller unmounts nothing before it
/// has called [`Prepared::undo`] (or dropped the result, on an error path).
pub(crate) fn prepare(rootfs: &Path, spec: &RunSpec) -> Result<Prepared> {
    let rfd = crate::fsroot::open_root(rootfs).map_err(io_err(rootfs))?;
    let mut p = Prepared {
        rootfs: rootfs.to_path_buf(),
        rfd,
        stubs: Vec::new(),
        swapped: Vec::new(),
    };
    // An image's `/dev`, `/proc` or `/sys` symlink is never followed: it becomes an empty
    // dir for the run and is put back afterwards.
    for name in ["dev", "proc", "sys"] {
        if let Some(s) =
            fsutil::swap_symlink_for_dir(&p.rfd, name).map_err(io_err(rootfs.join(name)))?
        {
            p.swapped.push(s);
        }
    }
    // Kept in the layer, as BuildKit leaves them: the runtime makes them. Except that when one
    // did not exist and a mount lands inside it (a shebang heredoc's `/dev/pipes/EOT`),
    // BuildKit's mount-stub cleaner records it with the mount's other missing parents and
    // removes it after the run, if empty: it is a stub then.
    for d in ["/dev", "/proc", "/sys"] {
        let made = p.ensure(d, true)?;
        let inside = format!("{d}/");
        if spec.mounts.iter().any(|m| m.target.starts_with(&inside)) {
            p.stubs.extend(made);
        }
    }
    p.ensure(&spec.cwd, true)?;
    // The literal check (`validate`) misses symlinks: `/fdlink/3` with `fdlink ->
    // /proc/self/fd` lands in /proc once the runtime mounts it (runc CVE-2024-21626).
    if p.lands_in_proc(&spec.cwd)? {
        return Err(ExecutorError::InvalidSpec(format!(
            "working dir {:?} resolves into /proc through a symlink of the image; use a \
             directory of the image",
            spec.cwd
        )));
    }
    // Removed after the run.
    for f in ETC_FILES {
        let made = p.ensure(f, false)?;
        p.stubs.extend(made);
    }
    for m in &spec.mounts {
        let is_dir = match &m.kind {
            MountKind::Bind { source, .. } => source.is_dir(),
            MountKind::Tmpfs { .. } => true,
        };
        let made = p.ensure(&m.target, is_dir)?;
        p.stubs.extend(made);
        if p.lands_in_proc(&m.target)? {
            return Err(ExecutorError::InvalidSpec(format!(
                "mount target {:?} resolves into /proc through a symlink of the image",
                m.target
            )));
        }
    }
    Ok(p)
}

impl Prepared {
    /// Creates `p` (and missing parents) in-root; returns the entries it created.
    fn ensure(&self, p: &str, is_dir: bool) -> Result<Vec<Created>> {
        fsutil::ensure_in_root(&self.rfd, p, is_dir).map_err(io_err(self.in_root(p)))
    }

    fn lands_in_proc(&self, p: &str) -> Result<bool> {
        fsutil::lands_in(&self.rfd, p, "proc").map_err(io_err(self.in_root(p)))
    }

    fn in_root(&self, p: &str) -> PathBuf {
        self.rootfs.join(p.trim_start_matches('/'))
    }

    /// After the run (its processes gone, the rootfs still mounted): removes the stubs that
    /// are still the same empty entries, deepest first, and puts the swapped links back.
    /// Stubs go through the merged view: overlay removes upper-only entries without whiteouts.
    pub(crate) fn undo(self) -> Result<Undone> {
        let mut undone = Undone::default();
        for s in self.stubs.iter().rev() {
            if fsutil::remove_if_stub(&self.rfd, s).map_err(io_err(self.in_root(&s.path)))? {
                undone.removed.push(s.clone());
            }
        }
        for s in &self.swapped {
            if fsutil::restore_symlink(&self.rfd, s).map_err(io_err(self.rootfs.join(&s.name)))? {
                undone.restored.push(s.clone());
            }
        }
        Ok(undone)
    }
}
