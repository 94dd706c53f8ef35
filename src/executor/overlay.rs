//! Overlay mounts through the kernel's new mount API: `fsopen("overlay")` plus one
//! `lowerdir+` per layer (Linux ≥ 6.8), so the page-sized limit of the legacy `lowerdir=`
//! option string does not cap the number of layers. Older kernels get the legacy string when
//! it fits.

use super::{ExecutorError, Result};
use rustix::fd::AsFd;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};
use std::path::{Path, PathBuf};

/// Options every hoist overlay gets: no metacopy (a metadata-only copy-up would leave upper
/// files without data, which a layer diff cannot use), no redirect xattrs, no index.
const FIXED_OPTIONS: [(&str, &str); 3] = [
    ("redirect_dir", "off"),
    ("metacopy", "off"),
    ("index", "off"),
];

/// In hoist's own user namespace (rootless, [`crate::userns`]) the kernel allows overlay
/// only with `user.overlay.*` xattrs (`userxattr`, which also refuses redirects to be
/// followed: `redirect_dir=nofollow` there is what `off` is as root).
const USERNS_OPTIONS: [(&str, &str); 3] = [
    ("redirect_dir", "nofollow"),
    ("metacopy", "off"),
    ("index", "off"),
];

fn fixed_options() -> (&'static [(&'static str, &'static str)], bool) {
    if crate::userns::current().is_some() {
        (&USERNS_OPTIONS, true)
    } else {
        (&FIXED_OPTIONS, false)
    }
}

/// Mounts an overlay of `lowers` (bottom first) on `target`. With `rw = Some((upper, work))`
/// the mount is writable; without it, read-only (needs at least two lowers).
pub(crate) fn mount_overlay(
    lowers: &[PathBuf],
    rw: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<()> {
    let err = |source: std::io::Error| ExecutorError::Mount {
        what: format!("overlay of {} layer(s)", lowers.len()),
        target: target.to_path_buf(),
        source,
    };
    if lowers.is_empty() {
        return Err(ExecutorError::InvalidSpec(
            "an overlay needs at least one lower dir".into(),
        ));
    }
    match mount_new_api(lowers, rw, target) {
        Ok(()) => Ok(()),
        // No new mount API or no `lowerdir+`: fall back to the legacy option string.
        Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::INVAL => {
            mount_legacy(lowers, rw, target).map_err(|e| userns_hint(e, target, &err))
        }
        Err(e) => Err(userns_hint(e.into(), target, &err)),
    }
}

/// In a user namespace, a refused overlay most likely means a kernel older than 5.11 (or
/// one built without unprivileged overlay): say so rather than a bare EPERM.
fn userns_hint(
    e: std::io::Error,
    target: &Path,
    err: &dyn Fn(std::io::Error) -> ExecutorError,
) -> ExecutorError {
    let refused = matches!(
        rustix::io::Errno::from_io_error(&e),
        Some(rustix::io::Errno::PERM | rustix::io::Errno::INVAL)
    );
    if crate::userns::current().is_some() && refused {
        return ExecutorError::RootlessOverlay {
            target: target.to_path_buf(),
            source: e,
        };
    }
    err(e)
}

fn mount_new_api(
    lowers: &[PathBuf],
    rw: Option<(&Path, &Path)>,
    target: &Path,
) -> rustix::io::Result<()> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    // Overlay's lower list is top first.
    for l in lowers.iter().rev() {
        rustix::mount::fsconfig_set_string(fs.as_fd(), "lowerdir+", l.as_path())?;
    }
    if let Some((upper, work)) = rw {
        rustix::mount::fsconfig_set_string(fs.as_fd(), "upperdir", upper)?;
        rustix::mount::fsconfig_set_string(fs.as_fd(), "workdir", work)?;
        // `volatile` (Linux ≥ 5.10): no sync of the upper fs, above all at unmount, where
        // overlay otherwise syncs the whole filesystem the upper dir lives on (1.7 s after a
        // RUN that wrote 1 GiB). The upper dir is scratch: the layer made from it is a
        // blob that is fsynced, and snapshots are re-made from blobs after an unclean
        // reboot (`Store::open`). A kernel without the option mounts without it.
        let _ = rustix::mount::fsconfig_set_flag(fs.as_fd(), "volatile");
    }
    let (options, userxattr) = fixed_options();
    if userxattr {
        rustix::mount::fsconfig_set_flag(fs.as_fd(), "userxattr")?;
    }
    for &(k, v) in options {
        rustix::mount::fsconfig_set_string(fs.as_fd(), k, v)?;
    }
    rustix::mount::fsconfig_create(fs.as_fd())?;
    let attrs = if rw.is_some() {
        MountAttrFlags::empty()
    } else {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    };
    let mnt = rustix::mount::fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

fn mount_legacy(
    lowers: &[PathBuf],
    rw: Option<(&Path, &Path)>,
    target: &Path,
) -> std::io::Result<()> {
    let mut data = String::from("lowerdir=");
    let names: Vec<String> = lowers.iter().rev().map(|l| escape(l)).collect();
    data.push_str(&names.join(":"));
    if let Some((upper, work)) = rw {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            escape(upper),
            escape(work)
        ));
    }
    let (options, userxattr) = fixed_options();
    if userxattr {
        data.push_str(",userxattr");
    }
    for &(k, v) in options {
        data.push_str(&format!(",{k}={v}"));
    }
    if data.len() >= 4000 {
        return Err(std::io::Error::other(format!(
            "{} layers do not fit overlay's legacy lowerdir option on this kernel; \
             Linux 6.8 or newer (lowerdir+) is needed for this image",
            lowers.len()
        )));
    }
    let flags = if rw.is_some() {
        MountFlags::empty()
    } else {
        MountFlags::RDONLY
    };
    let data = std::ffi::CString::new(data).map_err(std::io::Error::other)?;
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str())?;
    Ok(())
}

fn escape(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Unmounts `target`; falls back to a lazy detach when it is busy.
pub(crate) fn unmount(target: &Path) -> Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => {
            rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW).map_err(
                |e| ExecutorError::Mount {
                    what: "unmount".into(),
                    target: target.into(),
                    source: e.into(),
                },
            )
        }
        Err(e) => Err(ExecutorError::Mount {
            what: "unmount".into(),
            target: target.into(),
            source: e.into(),
        }),
    }
}

/// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything at or below `dir` (deepest first). Errors if something stays mounted,
/// so that callers never delete through a live mount.
pub(crate) fn unmount_all_under(dir: &Path) -> Result<()> {
    for m in mounts_under(dir) {
        let _ = unmount(&m);
    }
    match mounts_under(dir).first() {
        None => Ok(()),
        Some(m) => Err(ExecutorError::Mount {
            what: "unmount".into(),
            target: m.clone(),
            source: std::io::Error::other("still mounted after unmount"),
        }),
    }
}

/// Removes `dir` recursively, but only when nothing is mounted below it.
pub(crate) fn remove_dir_safely(dir: &Path) -> Result<()> {
    unmount_all_under(dir)?;
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ExecutorError::Io {
            path: dir.into(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo(r"/plain\04"), r"/plain\04");
    }

    #[test]
    fn legacy_escape() {
        assert_eq!(escape(Path::new("/a:b,c")), r"/a\:b\,c");
    }
}
